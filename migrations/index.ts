import type { Knex } from 'knex';
import * as initial from './20261121000000_initial.js';
import * as apiRefreshTokens from './20261121000100_api_refresh_tokens.js';
import * as throttleAndAudit from './20261122000000_throttle_and_audit.js';
import * as partialPayloadIndexes from './20261122000100_partial_payload_indexes.js';
import * as resources from './20261122000200_resources.js';
import * as emailTokens from './20261122000300_email_tokens.js';
import * as twoFactor from './20261122000400_two_factor.js';
import * as throttlePending from './20261207000100_throttle_pending.js';
import * as userAuthStamp from './20261207000200_user_auth_stamp.js';
import * as pendingEmail from './20261207000300_pending_email.js';
import * as hashedPayloadIds from './20261207001000_hashed_payload_ids.js';
import * as usernameKeys from './20261207002000_username_keys.js';
import * as djangoImportLinks from './20261207003000_django_import_links.js';
import * as groups from './20261207003100_groups.js';
import * as userPermissions from './20261207006000_user_permissions.js';
import * as setupTokens from './20261208001000_setup_tokens.js';

/** Every migration, oldest first. Add new ones at the end; never edit a released one. */
export const migrations: ReadonlyArray<{ name: string; migration: Knex.Migration }> = [
  { name: '20261121000000_initial', migration: initial },
  { name: '20261121000100_api_refresh_tokens', migration: apiRefreshTokens },
  { name: '20261122000000_throttle_and_audit', migration: throttleAndAudit },
  { name: '20261122000100_partial_payload_indexes', migration: partialPayloadIndexes },
  { name: '20261122000200_resources', migration: resources },
  { name: '20261122000300_email_tokens', migration: emailTokens },
  { name: '20261122000400_two_factor', migration: twoFactor },
  { name: '20261207000100_throttle_pending', migration: throttlePending },
  { name: '20261207000200_user_auth_stamp', migration: userAuthStamp },
  { name: '20261207000300_pending_email', migration: pendingEmail },
  { name: '20261207001000_hashed_payload_ids', migration: hashedPayloadIds },
  { name: '20261207002000_username_keys', migration: usernameKeys },
  { name: '20261207003000_django_import_links', migration: djangoImportLinks },
  { name: '20261207003100_groups', migration: groups },
  { name: '20261207006000_user_permissions', migration: userPermissions },
  { name: '20261208001000_setup_tokens', migration: setupTokens },
];

import type { Knex } from 'knex';
import { fastQuery } from './fast-query.js';

/** How an API resource's access tokens look: RFC 9068 JWTs, or opaque handles checked by introspection. */
export type AccessTokenFormat = 'jwt' | 'opaque';
export const ACCESS_TOKEN_FORMATS: readonly AccessTokenFormat[] = ['jwt', 'opaque'];

/** An API resource (RFC 8707): an audience Latchkey issues access tokens for. */
export interface ResourceRecord {
  id: number;
  /** The resource indicator clients send as `resource`; tokens carry it as `aud`. */
  identifier: string;
  name: string;
  /** The scopes the resource offers; a requested scope outside this list is never granted. */
  scopes: string[];
  /** Access token lifetime in seconds. */
  accessTokenTtl: number;
  accessTokenFormat: AccessTokenFormat;
  createdAt: number;
  updatedAt: number;
}

export type NewResource = Pick<ResourceRecord, 'identifier' | 'name' | 'scopes' | 'accessTokenTtl' | 'accessTokenFormat'>;

interface ResourceRow {
  id: number;
  identifier: string;
  name: string;
  scopes: string;
  access_token_ttl: number;
  access_token_format: string;
  created_at: number;
  updated_at: number;
}

/** Raised when another resource already has the identifier. */
export class DuplicateResourceError extends Error {
  constructor() {
    super('a resource with that identifier already exists');
    this.name = 'DuplicateResourceError';
  }
}

function fromRow(row: ResourceRow): ResourceRecord {
  const scopes = JSON.parse(row.scopes) as unknown;
  return {
    id: Number(row.id),
    identifier: row.identifier,
    name: row.name,
    scopes: Array.isArray(scopes) ? scopes.filter((s): s is string => typeof s === 'string') : [],
    accessTokenTtl: Number(row.access_token_ttl),
    accessTokenFormat: row.access_token_format === 'opaque' ? 'opaque' : 'jwt',
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
  };
}

function toRow(input: NewResource): Omit<ResourceRow, 'id' | 'created_at' | 'updated_at'> {
  return {
    identifier: input.identifier,
    name: input.name,
    scopes: JSON.stringify(input.scopes),
    access_token_ttl: input.accessTokenTtl,
    access_token_format: input.accessTokenFormat,
  };
}

/** The unique index settles a race between two writers: report it as the duplicate it is. */
function mapUniqueViolation(error: unknown): never {
  if (error instanceof Error && /unique/i.test(error.message)) throw new DuplicateResourceError();
  throw error;
}

export type ResourceRepository = ReturnType<typeof createResourceRepository>;

/** SQL for the resources table; plain {@link ResourceRecord} objects out. */
export function createResourceRepository(knex: Knex) {
  const table = () => knex<ResourceRow>('resources');

  return {
    async insert(input: NewResource): Promise<ResourceRecord> {
      if (await table().where({ identifier: input.identifier }).first('id')) throw new DuplicateResourceError();
      const now = Date.now();
      try {
        const [row] = await table()
          .insert({ ...toRow(input), created_at: now, updated_at: now })
          .returning('*');
        return fromRow(row as ResourceRow);
      } catch (error) {
        mapUniqueViolation(error);
      }
    },

    async find(id: number): Promise<ResourceRecord | undefined> {
      if (!Number.isSafeInteger(id) || id < 1) return undefined;
      const row = await table().where({ id }).first();
      return row ? fromRow(row as ResourceRow) : undefined;
    },

    /** Exact match, as RFC 8707 compares indicators; on the token endpoint's path, so a prepared statement. */
    async findByIdentifier(identifier: string): Promise<ResourceRecord | undefined> {
      const row = await fastQuery(knex, 'select * from resources where identifier = ? limit 1', [identifier], 'first');
      return row ? fromRow(row as unknown as ResourceRow) : undefined;
    },

    async list(): Promise<ResourceRecord[]> {
      const rows = (await table().orderBy('identifier').orderBy('id')) as ResourceRow[];
      return rows.map(fromRow);
    },

    async update(id: number, input: NewResource): Promise<ResourceRecord | undefined> {
      if (await table().where({ identifier: input.identifier }).whereNot({ id }).first('id')) throw new DuplicateResourceError();
      try {
        await table().where({ id }).update({ ...toRow(input), updated_at: Date.now() });
      } catch (error) {
        mapUniqueViolation(error);
      }
      return this.find(id);
    },

    async delete(id: number): Promise<boolean> {
      return (await table().where({ id }).delete()) > 0;
    },
  };
}

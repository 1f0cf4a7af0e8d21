import { actorEntry, type AuditActor, type AuditLog } from '../audit/audit-log.js';
import { DomainError } from '../errors.js';
import { DuplicateResourceError, type ResourceRecord, type ResourceRepository } from '../../storage/resources.js';
import { BUILT_IN_RESOURCE_ID, builtInApiResource, type Resource } from './built-in.js';
import { checkResource, type ResourceInput } from './resource-input.js';

const duplicate = () => new DomainError('resource_identifier_taken');
const notFound = () => new DomainError('resource_not_found');

function stored(record: ResourceRecord): Resource {
  return { ...record, builtIn: false };
}

/** How a resource is described to people and the REST API. */
export function resourceJson(resource: Resource) {
  return {
    id: resource.id,
    identifier: resource.identifier,
    name: resource.name,
    scopes: resource.scopes,
    access_token_ttl: resource.accessTokenTtl,
    access_token_format: resource.accessTokenFormat,
    built_in: resource.builtIn,
    created_at: resource.createdAt === null ? null : new Date(resource.createdAt).toISOString(),
    updated_at: resource.updatedAt === null ? null : new Date(resource.updatedAt).toISOString(),
  };
}

/** The input that reproduces a resource, for edits that change only some fields. */
function describe(resource: Resource): ResourceInput {
  return {
    identifier: resource.identifier,
    name: resource.name,
    scopes: resource.scopes,
    accessTokenTtl: resource.accessTokenTtl,
    accessTokenFormat: resource.accessTokenFormat,
  };
}

/**
 * API resources (RFC 8707) for the admin pages, the REST API, the CLI and the provider:
 * validation, the built-in REST API resource (listed first, read-only), uniqueness of
 * identifiers (409) and the audit log.
 */
export function createResourceService({ resources, audit, publicUrl }: { resources: ResourceRepository; audit: AuditLog; publicUrl: string }) {
  const builtIn = builtInApiResource(publicUrl);

  const record = (event: string, resource: Resource, by: AuditActor | undefined, details: Record<string, unknown> = {}) =>
    audit.record(event, { ...actorEntry(by), targetType: 'resource', targetId: resource.id, details: { identifier: resource.identifier, ...details } });

  /** A resource by id: 0 is the built-in one; anything that is not a whole number is unknown. */
  async function get(id: number | string): Promise<Resource> {
    const numeric = typeof id === 'number' ? id : /^\d{1,15}$/.test(id) ? Number(id) : NaN;
    if (numeric === BUILT_IN_RESOURCE_ID) return builtIn;
    const found = await resources.find(numeric);
    if (!found) throw notFound();
    return stored(found);
  }

  function editable(resource: Resource): Resource {
    if (resource.builtIn) throw new DomainError('built_in_resource');
    return resource;
  }

  async function findByIdentifier(identifier: string): Promise<Resource | undefined> {
    if (identifier === builtIn.identifier) return builtIn;
    const found = await resources.findByIdentifier(identifier);
    return found ? stored(found) : undefined;
  }

  async function remove(resource: Resource, by?: AuditActor): Promise<void> {
    editable(resource);
    if (!(await resources.delete(resource.id))) throw notFound();
    await record('resource.deleted', resource, by);
  }

  return {
    builtIn,
    get,

    /** A resource that may be changed: 404 when unknown, 403 for the built-in one. */
    async getEditable(id: number | string): Promise<Resource> {
      return editable(await get(id));
    },

    /** The built-in resource first, then the stored ones by identifier. */
    async list(): Promise<Resource[]> {
      return [builtIn, ...(await resources.list()).map(stored)];
    },

    /** The resource a `resource` parameter names, compared exactly; undefined when none. */
    findByIdentifier,

    async create(input: ResourceInput, by?: AuditActor): Promise<Resource> {
      const checked = checkResource(input);
      if (checked.identifier === builtIn.identifier) throw duplicate();
      try {
        const created = stored(await resources.insert(checked));
        await record('resource.created', created, by, { scopes: created.scopes, format: created.accessTokenFormat, ttl: created.accessTokenTtl });
        return created;
      } catch (error) {
        if (error instanceof DuplicateResourceError) throw duplicate();
        throw error;
      }
    },

    /** Changes some fields; tokens already issued keep what they were issued with until they expire. */
    async update(id: number | string, changes: ResourceInput, by?: AuditActor): Promise<Resource> {
      const current = editable(await get(id));
      const defined = Object.fromEntries(Object.entries(changes).filter(([, v]) => v !== undefined)) as ResourceInput;
      const checked = checkResource({ ...describe(current), ...defined });
      if (checked.identifier === builtIn.identifier) throw duplicate();
      try {
        const updated = await resources.update(current.id, checked);
        if (!updated) throw notFound();
        const result = stored(updated);
        await record('resource.updated', result, by, { fields: Object.keys(defined), previous_identifier: current.identifier });
        return result;
      } catch (error) {
        if (error instanceof DuplicateResourceError) throw duplicate();
        throw error;
      }
    },

    async remove(id: number | string, by?: AuditActor): Promise<void> {
      await remove(await get(id), by);
    },

    /** For the CLI, which names resources by identifier. */
    async removeByIdentifier(identifier: string, by?: AuditActor): Promise<Resource> {
      const resource = await findByIdentifier(identifier);
      if (!resource) throw notFound();
      await remove(resource, by);
      return resource;
    },
  };
}

export type ResourceService = ReturnType<typeof createResourceService>;

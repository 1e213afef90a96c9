// The catalog as the rest of Troveless sees it: Trove's datastores, datastore versions and flavors
// (Nova's, in Trove; ours, since there is no Nova).

export interface Datastore {
  id: string;
  name: string;
  default_version_id?: string;
}

export interface DatastoreVersion {
  id: string;
  datastore_id: string;
  datastore_name: string;
  /** What users pass as `datastore.version`, e.g. "10.11". */
  name: string;
  /** The version number (`version_number` in instance views). */
  version: string;
  /** Which guest-agent engine manager runs it. */
  manager: string;
  active: boolean;
  image?: string;
  image_tags?: string[];
  packages: string[];
}

export interface Flavor {
  id: string;
  name: string;
  /** MB */
  ram: number;
  vcpus: number;
  /** GB */
  disk: number;
  ephemeral: number;
}

/** The engine managers the guest agent has: a version naming any other could never start. */
export const MANAGERS = ['mysql', 'mariadb', 'postgresql', 'redis'] as const;
export type Manager = (typeof MANAGERS)[number];

/**
 * How an instance, a cluster or a configuration group records the version it runs (the shape of
 * InstanceItem['datastore']): names for the views, the id and manager for the workflows.
 */
export function datastoreRefOf(version: DatastoreVersion): {
  type: string;
  version: string;
  version_id: string;
  version_number: string;
  manager: string;
} {
  return {
    type: version.datastore_name,
    version: version.name,
    version_id: version.id,
    version_number: version.version,
    manager: version.manager,
  };
}

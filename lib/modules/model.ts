/**
 * A module, keyed by its owner's project first like every item; a module for all tenants (Trove's
 * tenant_id NULL) lives in the ALL_TENANTS partition, which no project id can equal.
 */
export interface ModuleItem {
  project_id: string;
  id: string;
  name: string;
  /** Lower-cased, as Trove stores it. */
  type: string;
  description: string | null;
  tenant_id: string | null;
  datastore_id: string | null;
  datastore_name: string | null;
  datastore_version_id: string | null;
  datastore_version_name: string | null;
  auto_apply: boolean;
  visible: boolean;
  live_update: boolean;
  priority_apply: boolean;
  apply_order: number;
  is_admin: boolean;
  /** md5 of the base64 text, as Trove hashes what it was sent. */
  md5: string;
  /** The base64 contents, sealed with the module's own data key (AES-256-GCM). */
  sealed_contents: string;
  /** That data key, wrapped by the deployment's key-encryption key (KMS; locally a secret). */
  wrapped_key: string;
  created: string;
  updated: string;
}

/** Trove's Modules.MATCH_ALL_NAME: shown for a module of no tenant, datastore or version. */
export const MATCH_ALL = 'all';

/** The partition of all-tenant modules: '*' is not a character of any project id. */
export const ALL_TENANTS = '*';

/** Trove's CONF.module_types: the drivers its guest ships. */
export const MODULE_TYPES = ['ping', 'new_relic_license'];

/** An application of a module to an instance (Trove's instance_modules row), kept on the instance item. */
export interface InstanceModuleRecord {
  md5: string;
  created: string;
  updated: string;
  /**
   * The last reapply of this module to the instance that did not take (the guest refused or did
   * not answer): the md5 it tried, why, and when. Any later apply writes a record without it.
   */
  reapply_error?: { md5: string; message: string; at: string };
}

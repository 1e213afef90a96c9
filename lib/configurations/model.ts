/** A configuration group, keyed by project first like every item. */
export interface ConfigurationItem {
  project_id: string;
  id: string;
  name: string;
  description?: string;
  values: Record<string, string | number | boolean>;
  datastore: { type: string; version_id: string; version: string; version_number: string; manager: string };
  created: string;
  updated: string;
}

import { dynamoose, tableOptions } from '../db.ts';

// The catalog table holds one partition per kind (hash key `kind`, range key `id`): each listing
// is a single Query, and the whole catalog stays a few dozen items.
export const CATALOG_TABLE = process.env.TROVELESS_CATALOG_TABLE || 'troveless-dev-catalog';
export type Kind = 'datastore' | 'version' | 'flavor';

const keys = () => ({
  kind: { type: String, hashKey: true },
  id: { type: String, rangeKey: true },
});
const strings = { type: Array, schema: [String] };
const options = { tableName: CATALOG_TABLE, ...tableOptions };

export const DatastoreModel = dynamoose.model(
  'CatalogDatastore',
  new dynamoose.Schema(
    { ...keys(), name: { type: String, required: true }, default_version_id: String },
    { saveUnknown: false },
  ),
  options,
);

export const VersionModel = dynamoose.model(
  'CatalogDatastoreVersion',
  new dynamoose.Schema(
    {
      ...keys(),
      datastore_id: { type: String, required: true },
      datastore_name: { type: String, required: true },
      name: { type: String, required: true },
      version: { type: String, required: true },
      manager: { type: String, required: true },
      active: { type: Boolean, required: true },
      image: String,
      image_tags: strings,
      packages: strings,
    },
    { saveUnknown: false },
  ),
  options,
);

export const FlavorModel = dynamoose.model(
  'CatalogFlavor',
  new dynamoose.Schema(
    {
      ...keys(),
      name: { type: String, required: true },
      ram: { type: Number, required: true },
      vcpus: { type: Number, required: true },
      disk: { type: Number, required: true },
      ephemeral: { type: Number, required: true },
    },
    { saveUnknown: false },
  ),
  options,
);

export function keyOf(kind: Kind, id: string) {
  return { kind, id };
}

/** DynamoDB's answer when a conditional write (or one inside a transaction) found its condition false. */
export function isConditionFailure(err: unknown): boolean {
  const e = err as { name?: unknown; CancellationReasons?: Array<{ Code?: string }> } | null;
  if (e?.name === 'ConditionalCheckFailedException') return true;
  // A transaction can also be cancelled by a conflicting one: only a failed condition counts.
  return (
    e?.name === 'TransactionCanceledException' &&
    (e.CancellationReasons ?? []).some((r) => r.Code === 'ConditionalCheckFailed')
  );
}

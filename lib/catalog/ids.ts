import { createHash } from 'node:crypto';

// Catalog ids are name-based UUIDs (RFC 9562 version 5), so seeding twice, or on another stage,
// gives the same ids and instances keep valid references to their datastore version.
const NAMESPACE = 'cc068484-c5f6-48c6-9974-84237d157b2a';

export function uuidV5(name: string, namespace: string = NAMESPACE): string {
  const ns = Buffer.from(namespace.replaceAll('-', ''), 'hex');
  const hash = createHash('sha1').update(ns).update(name, 'utf8').digest();
  const bytes = hash.subarray(0, 16);
  bytes[6] = (bytes[6]! & 0x0f) | 0x50;
  bytes[8] = (bytes[8]! & 0x3f) | 0x80;
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

export const datastoreId = (name: string) => uuidV5(`datastore/${name}`);

/** Trove allows one name with several version numbers, so both are part of the identity. */
export const datastoreVersionId = (datastoreName: string, name: string, version: string) =>
  uuidV5(`version/${datastoreName}/${name}/${version}`);

/** Nova numbers flavors when the request names no id: the next integer after the largest one. */
export function nextFlavorId(ids: string[]): string {
  const numeric = ids.filter((id) => /^\d+$/.test(id)).map(Number);
  return String(numeric.length ? Math.max(...numeric) + 1 : 1);
}

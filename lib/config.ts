// Settings read from the environment once per cold start. Every variable is listed in the README.
function intFromEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value <= 0)
    throw new Error(`${name} must be a positive integer, got "${raw}"`);
  return value;
}

export const config = {
  /** Public base URL of the API (scheme://host:port) used in links and the catalog; else from the request. */
  publicUrl: process.env.TROVELESS_PUBLIC_URL?.replace(/\/+$/, '') || undefined,
  regionName: process.env.TROVELESS_REGION_NAME || 'RegionOne',
  tokenTtlSeconds: intFromEnv('TROVELESS_TOKEN_TTL', 3600),
  identityFile: process.env.TROVELESS_IDENTITY_FILE || 'config/identity.json',
  instancesTable: process.env.TROVELESS_INSTANCES_TABLE || 'troveless-dev-instances',
  pageSize: intFromEnv('TROVELESS_PAGE_SIZE', 20),
};

import { isIP } from 'node:net';
import { type AccountRules, ANY_HOST, type Problem } from './rule.ts';

// PostgreSQL: names are at most NAMEDATALEN-1 = 63 bytes (a longer one is silently truncated).
// PostgreSQL itself refuses role names starting with "pg_" (CREATE ROLE: 'role name "pg_x" is
// reserved'); Troveless reserves the prefix for databases too, in any case, so that no user or
// database of a tenant can be mistaken for one of the server's own (pg_monitor, pg_read_all_data).

export const postgresql: AccountRules = {
  datastore: 'postgresql',
  database: {
    what: 'database',
    maxLength: 63,
    unit: 'bytes',
    forbidden: /\\/,
    reserved: ['postgres', 'template0', 'template1', 'os_admin'],
    reservedPrefixes: ['pg_'],
  },
  user: {
    what: 'user',
    maxLength: 63,
    unit: 'bytes',
    // '@' would split `name@host` in a URL.
    forbidden: /[@\\]/,
    reserved: ['postgres', 'os_admin', 'root', 'troveless_repl'],
    reservedPrefixes: ['pg_'],
  },
  hostProblem: (host) => (pgHost(host) === undefined ? HOST_PROBLEM : undefined),
  hostForm: (host) => pgHost(host) ?? host,
};

const HOST_PROBLEM: Problem =
  'Host must be % (any host), an IP address or a CIDR network (PostgreSQL matches no host names).';

/**
 * '%', an IP address or a CIDR network, as pg_hba.conf takes it; MariaDB's ip/netmask form is
 * taken as the CIDR network it means. Undefined for anything else.
 */
function pgHost(host: string): string | undefined {
  if (host === ANY_HOST) return ANY_HOST;
  const [address = '', bits, ...rest] = host.split('/');
  const family = isIP(address);
  const prefix = bits !== undefined && family === 4 && isIP(bits) === 4 ? netmaskBits(bits) : bits;
  const max = family === 4 ? 32 : 128;
  const validBits =
    bits === undefined || (prefix !== undefined && /^\d{1,3}$/.test(prefix) && Number(prefix) <= max);
  if (!family || !validBits || rest.length) return undefined;
  return (prefix === undefined ? address : `${address}/${prefix}`).toLowerCase();
}

/** 255.255.0.0 → "16"; undefined for a mask that is not contiguous. */
function netmaskBits(mask: string): string | undefined {
  const value = mask.split('.').reduce((acc, part) => ((acc << 8) | Number(part)) >>> 0, 0);
  const bits = value.toString(2).replace(/0+$/, '');
  return value === 0 ? '0' : bits.includes('0') ? undefined : String(bits.length);
}

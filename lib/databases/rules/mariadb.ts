import type { AccountRules, Problem } from './rule.ts';

// MariaDB (also Trove's "mysql"): Trove's MySQLSchema and MySQLUser rules and ignore lists.

export const mariadb: AccountRules = {
  datastore: 'mariadb',
  database: {
    what: 'database',
    maxLength: 64,
    unit: 'characters',
    // Trove's MySQLSchema: letters, digits, '_' and '-', with spaces, '?', '#' or '@' only inside.
    pattern: /^[A-Za-z0-9_-]+[\s?#@]*[A-Za-z0-9_-]+$|^[A-Za-z0-9_-]$/,
    reserved: ['mysql', 'information_schema', 'performance_schema', 'sys', 'lost+found'],
    reservedPrefixes: ['#mysql50#'],
  },
  user: {
    what: 'user',
    maxLength: 32,
    unit: 'characters',
    // '@' would split `name@host` in a URL; a backslash is an escape in MariaDB's own grant tables.
    forbidden: /[@\\]/,
    reserved: ['root', 'os_admin', 'mariadb.sys', 'mysql', 'debian-sys-maint', 'public', 'troveless_repl'],
    reservedPrefixes: [],
  },
  hostProblem,
  hostForm,
};

/** A MariaDB host pattern ('%', '10.0.%', 'db.example'), an IP address or a CIDR network. */
function hostProblem(host: string): Problem {
  if (host.length > 255 || !/^[A-Za-z0-9._%:/-]+$/.test(host)) {
    return 'Host must be a host name, an IP address or a pattern such as %.';
  }
  return undefined;
}

/**
 * In lower case as MariaDB keeps it; a CIDR network (10.0.0.0/8) becomes the ip/netmask form
 * MariaDB matches (10.0.0.0/255.0.0.0).
 */
function hostForm(host: string): string {
  const cidr = /^(\d+\.\d+\.\d+\.\d+)\/(\d{1,2})$/.exec(host);
  if (cidr && Number(cidr[2]) <= 32) {
    const bits = Number(cidr[2]);
    const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
    return `${cidr[1]}/${[24, 16, 8, 0].map((shift) => (mask >>> shift) & 255).join('.')}`;
  }
  return host.toLowerCase();
}

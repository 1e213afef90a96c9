import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join } from 'node:path';
import type pg from 'pg';
import { account, writeConfig } from './fs.ts';
import { waitFor } from './process.ts';
import { REPLICATION_USER } from './replication-state.ts';

// PostgreSQL has no host on its roles: who may log in from where is pg_hba.conf. The agent keeps
// what Trove asked for (each user's host, whether root may log in) in a small file in the data
// dir, so it travels with the roles it describes, and writes pg_hba.conf from it:
//   - the agent logs in as postgres over the socket by peer authentication, always;
//   - root (postgres with a password) may log in over TCP only while root is enabled;
//   - a user whose host is not '%' may log in from that address or network only.

const RULES_FILE = 'troveless-access.json';

export interface AccessRules {
  rootLogin: boolean;
  /** Users restricted to one address or network; users not listed may log in from any host. */
  hosts: Map<string, string>;
}

export function renderHba(rules: AccessRules, loopbackOnly: boolean): string {
  const restricted = [...rules.hosts].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return [
    '# Written by the Troveless guest agent from troveless-access.json; rewritten on every change.',
    '# TYPE DATABASE USER ADDRESS METHOD',
    'local all postgres peer map=agent',
    // The replica set's account streams WAL, from wherever the host's firewall lets it in.
    `host replication ${REPLICATION_USER} all scram-sha-256`,
    ...restricted.map(([role]) => `local all ${quote(role)} reject`),
    'local all all scram-sha-256',
    ...(rules.rootLogin ? [] : ['host all postgres all reject']),
    ...restricted.flatMap(([role, host]) => [
      `host all ${quote(role)} ${network(host)} scram-sha-256`,
      `host all ${quote(role)} all reject`,
    ]),
    'host all all 127.0.0.1/32 scram-sha-256',
    'host all all ::1/128 scram-sha-256',
    // Off loopback, any address may try; users restricted to a host were matched above.
    ...(loopbackOnly ? [] : ['host all all 0.0.0.0/0 scram-sha-256', 'host all all ::/0 scram-sha-256']),
    '',
  ].join('\n');
}

export class PgAccessRules {
  /** The rules' own file, in the data dir beside pg_hba.conf. */
  static readonly FILE = RULES_FILE;
  private readonly rulesFile: string;
  private readonly hbaFile: string;

  constructor(
    dataDir: string,
    private readonly loopbackOnly: boolean,
    /** A new superuser session (peer authentication over the socket, untouched by these rules). */
    private readonly connect: () => Promise<pg.Client>,
    /** The OS user the server runs as (owner of its config files). */
    private readonly osUser = 'postgres',
  ) {
    this.rulesFile = join(dataDir, RULES_FILE);
    this.hbaFile = join(dataDir, 'pg_hba.conf');
  }

  async load(): Promise<AccessRules> {
    const text = await readFile(this.rulesFile, 'utf8').catch(() => undefined);
    if (text === undefined) return { rootLogin: false, hosts: new Map() };
    const saved = JSON.parse(text) as { rootLogin?: boolean; hosts?: [string, string][] };
    return { rootLogin: saved.rootLogin === true, hosts: new Map(saved.hosts ?? []) };
  }

  /** Writes the rules and pg_hba.conf, without telling a running server (configure, before start). */
  async write(rules: AccessRules): Promise<void> {
    const owner = await account(this.osUser);
    const saved = { rootLogin: rules.rootLogin, hosts: [...rules.hosts] };
    await writeConfig(this.rulesFile, `${JSON.stringify(saved, null, 2)}\n`, owner, 0o600);
    await writeConfig(this.hbaFile, renderHba(rules, this.loopbackOnly), owner, 0o600);
  }

  /**
   * Writes the rules and has the running server use them: pg_hba.conf is checked through
   * pg_hba_file_rules first (a broken file is put back), then reloaded, and this returns once a
   * new session is served by the reloaded postmaster, so the next login meets the new rules.
   */
  async apply(client: pg.Client, rules: AccessRules): Promise<void> {
    const previous = {
      rules: await readFile(this.rulesFile, 'utf8').catch(() => undefined),
      hba: await readFile(this.hbaFile, 'utf8'),
    };
    await this.write(rules);
    const broken = await client.query<{ line_number: number; error: string }>(
      'SELECT line_number, error FROM pg_hba_file_rules WHERE error IS NOT NULL',
    );
    if (broken.rowCount) {
      const owner = await account(this.osUser);
      await writeConfig(this.hbaFile, previous.hba, owner, 0o600);
      if (previous.rules !== undefined) await writeConfig(this.rulesFile, previous.rules, owner, 0o600);
      const [first] = broken.rows;
      throw new Error(`postgresql: pg_hba.conf line ${first?.line_number}: ${first?.error}; left unchanged`);
    }
    const { rows } = await client.query<{ now: string }>('SELECT clock_timestamp()::text AS now');
    const before = rows[0]?.now;
    await client.query('SELECT pg_reload_conf()');
    // The postmaster reloads on SIGHUP; a backend it forks afterwards inherits the new load time.
    await waitFor(
      'postgresql to reload pg_hba.conf',
      async () => {
        const probe = await this.connect();
        try {
          const loaded = await probe.query<{ done: boolean }>(
            'SELECT pg_conf_load_time() >= $1::timestamptz AS done',
            [before],
          );
          return loaded.rows[0]?.done ? true : undefined;
        } finally {
          await probe.end();
        }
      },
      { timeoutMs: 10_000 },
    );
  }
}

/** A role name as a pg_hba.conf token: quoted (no keyword, group or file meaning), `"` doubled. */
function quote(role: string): string {
  return `"${role.replaceAll('"', '""')}"`;
}

function network(host: string): string {
  if (host.includes('/')) return host;
  return isIP(host) === 4 ? `${host}/32` : `${host}/128`;
}

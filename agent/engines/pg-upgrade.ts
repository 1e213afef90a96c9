import { spawn } from 'node:child_process';
import type pg from 'pg';
import type { PostgresqlVersion } from '../../lib/catalog/postgresql-versions.ts';
import { engineEnv } from './process.ts';
import type { Fingerprint } from './upgrade.ts';

// The parts of a PostgreSQL major-version upgrade (PostgresqlManager.upgrade) that need no state
// of the manager: the data's fingerprint that must read back equal (compared by upgrade.ts), and
// the dump-and-restore pipe used where no pg_upgrade of the target exists.

/**
 * Every user table of every database that takes connections: count(*) and the sum of each row's
 * text hashed (hashtextextended: the same function and text output in 15, 16 and 17), so no sort
 * of the table is needed and a changed, lost or added row changes it.
 */
export async function fingerprint(connect: (database: string) => Promise<pg.Client>): Promise<Fingerprint> {
  const out: Fingerprint = {};
  const admin = await connect('postgres');
  let databases: string[];
  try {
    const { rows } = await admin.query<{ datname: string }>(
      'SELECT datname FROM pg_database WHERE datallowconn ORDER BY datname',
    );
    databases = rows.map((r) => r.datname);
  } finally {
    await admin.end().catch(() => {});
  }
  for (const database of databases) {
    const client = await connect(database);
    try {
      const { rows: tables } = await client.query<{ name: string }>(
        `SELECT format('%I.%I', n.nspname, c.relname) AS name FROM pg_class c
           JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE c.relkind IN ('r', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
            AND n.nspname NOT LIKE 'pg\\_toast%' ORDER BY 1`,
      );
      for (const { name } of tables) {
        const { rows } = await client.query<{ n: string; h: string }>(
          `SELECT count(*)::text AS n, coalesce(sum(hashtextextended(t::text, 0)::numeric), 0)::text AS h FROM ${name} t`,
        );
        out[`${database}.${name}`] = { rows: Number(rows[0]?.n ?? 0), hash: rows[0]?.h ?? '0' };
      }
    } finally {
      await client.end().catch(() => {});
    }
  }
  return out;
}

/**
 * pg_dumpall of the old server (its own version's, or a newer client where it has none) into
 * psql on the new server, as `user`, stopping at the first error. The one statement that must
 * fail is left out: CREATE ROLE of the bootstrap superuser, which the new cluster already has.
 */
export function dumpAndRestore(
  user: string,
  from: PostgresqlVersion,
  source: { socketDir: string; port: number },
  target: { socketDir: string; port: number },
): Promise<void> {
  return new Promise((resolve, reject) => {
    const env = engineEnv();
    const dump = spawn(
      'runuser',
      [
        '-u',
        user,
        '--',
        `${from.clientBinDir}/pg_dumpall`,
        `--host=${source.socketDir}`,
        `--port=${source.port}`,
        '--username=postgres',
        '--no-password',
      ],
      { env, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const restore = spawn(
      'runuser',
      [
        '-u',
        user,
        '--',
        // The dumper's own psql: a dump may carry meta-commands of its patch release (15.14's
        // \restrict) that another build's psql refuses; any psql runs a script on a newer server.
        `${from.clientBinDir}/psql`,
        `--host=${target.socketDir}`,
        `--port=${target.port}`,
        '--username=postgres',
        '--no-password',
        '--no-psqlrc',
        '--quiet',
        '--set=ON_ERROR_STOP=1',
        '--dbname=postgres',
        '--file=-',
      ],
      { env, stdio: ['pipe', 'ignore', 'pipe'] },
    );
    const errors: string[] = [];
    dump.stderr.on('data', (d: Buffer) => errors.push(`pg_dumpall: ${d.toString().trim()}`));
    restore.stderr.on('data', (d: Buffer) => errors.push(`psql: ${d.toString().trim()}`));
    let pending = '';
    // psql gone (it stopped at an error): the rest of the dump is drained into nothing, so that
    // pg_dumpall is never left blocked on a full pipe that nobody reads.
    let restoreGone = false;
    restore.on('exit', () => {
      restoreGone = true;
      dump.stdout.resume();
    });
    dump.stdout.on('data', (chunk: Buffer) => {
      if (restoreGone) return;
      const text = pending + chunk.toString('utf8');
      const end = text.lastIndexOf('\n');
      pending = text.slice(end + 1);
      const lines = text.slice(0, end + 1).replace(/^CREATE ROLE postgres;\n/m, '');
      if (!restore.stdin.write(lines) && !restoreGone) {
        dump.stdout.pause();
        restore.stdin.once('drain', () => dump.stdout.resume());
      }
    });
    dump.stdout.on('end', () => {
      if (!restoreGone) restore.stdin.end(pending);
    });
    restore.stdin.on('error', () => {}); // psql gone: its exit says why
    let left = 2;
    let failed = '';
    const done = (what: string) => (code: number | null, sig: NodeJS.Signals | null) => {
      if (code !== 0) failed ||= `${what} failed (${sig ?? `exit code ${code}`})`;
      if (--left) return;
      if (failed) reject(new Error(`${failed}: ${errors.slice(0, 5).join('; ')}`));
      else resolve();
    };
    dump.on('exit', done('pg_dumpall'));
    restore.on('exit', done('psql'));
  });
}

import { execFile } from 'node:child_process';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EngineLayout } from '../../agent/engines/manager.ts';
import { MariaDbManager } from '../../agent/engines/mariadb.ts';
import { PostgresqlManager } from '../../agent/engines/postgresql.ts';
import { RedisManager } from '../../agent/engines/redis.ts';
import {
  type CertificateAuthority,
  createCertificateAuthority,
  issueInstanceCertificate,
} from '../../lib/tls/certificates.ts';
import { stopAndRemove, tempLayout } from '../integration/engines/helpers.ts';

// TLS on every engine (issue 10 item 4) and what keeps a tenant inside its Redis and MariaDB
// (item 3), against the real engines as the guest agent runs them, without the whole cloud.
// Each engine gets a certificate from the deployment CA for its address; clients that verify
// against that CA connect (Node drivers and the engines' own CLIs, the way a user would), and
// clients that trust another CA are refused. One instance per engine is shared by the file.

const run = promisify(execFile);
const APP = { name: 'app', password: 'app-Secret-1', host: '%', databases: [{ name: 'appdb' }] };

let ca: CertificateAuthority;
let otherCa: CertificateAuthority;
let caFile: string;
let otherCaFile: string;
let caDir = '';
const engines: {
  mariadb?: { layout: EngineLayout; manager: MariaDbManager };
  postgresql?: { layout: EngineLayout; manager: PostgresqlManager };
  redis?: { layout: EngineLayout; manager: RedisManager };
} = {};

async function prepared<M extends MariaDbManager | PostgresqlManager | RedisManager>(
  kind: string,
  make: (layout: EngineLayout) => M,
  users: (typeof APP)[],
): Promise<{ layout: EngineLayout; manager: M }> {
  const layout = await tempLayout(kind);
  const manager = make(layout);
  const tls = await issueInstanceCertificate(ca, `${kind}-instance`, [layout.bindAddress]);
  await manager.prepare({ memoryMb: 256, databases: [{ name: 'appdb' }], users, tls });
  return { layout, manager };
}

beforeAll(async () => {
  [ca, otherCa] = await Promise.all([
    createCertificateAuthority('Troveless security test CA'),
    createCertificateAuthority('Somebody else'),
  ]);
  caDir = (await tempLayout('tls-ca')).baseDir;
  caFile = join(caDir, 'ca.crt');
  otherCaFile = join(caDir, 'other-ca.crt');
  await Promise.all([writeFile(caFile, ca.certificate), writeFile(otherCaFile, otherCa.certificate)]);
  const [mariadb, postgresql, redis] = await Promise.all([
    prepared('mariadb', (l) => new MariaDbManager(l), [APP]),
    prepared('postgresql', (l) => new PostgresqlManager(l), [APP]),
    prepared('redis', (l) => new RedisManager(l), []),
  ]);
  Object.assign(engines, { mariadb, postgresql, redis });
}, 120_000);

afterAll(async () => {
  if (caDir) await rm(caDir, { recursive: true, force: true });
  for (const engine of Object.values(engines)) await stopAndRemove(engine.manager, engine.layout);
}, 120_000);

describe('MariaDB', () => {
  const connect = (trusted: string, login = { user: APP.name, password: APP.password }) => {
    const { layout } = engines.mariadb!;
    return mysql.createConnection({
      host: layout.bindAddress,
      port: layout.port,
      ...login,
      ssl: { ca: trusted, rejectUnauthorized: true },
      connectTimeout: 5_000,
    });
  };

  it('serves TLS with the instance certificate to a client verifying against the CA', async () => {
    const conn = await connect(ca.certificate);
    try {
      const [rows] = await conn.query("SHOW SESSION STATUS LIKE 'Ssl_version'");
      expect((rows as { Value: string }[])[0]?.Value).toMatch(/^TLSv1\.[23]$/);
    } finally {
      await conn.end();
    }
  });

  it('is refused by a client that trusts another CA', async () => {
    await expect(connect(otherCa.certificate)).rejects.toThrow(/certificate/i);
  });

  it('answers the mysql CLI with --ssl-verify-server-cert, and not with another CA', async () => {
    const { layout } = engines.mariadb!;
    const args = (ca: string) => [
      `--host=${layout.bindAddress}`,
      `--port=${layout.port}`,
      `--user=${APP.name}`,
      `--ssl-ca=${ca}`,
      '--ssl-verify-server-cert',
      '--batch',
      '--skip-column-names',
      '-e',
      "SHOW SESSION STATUS LIKE 'Ssl_cipher'",
    ];
    const env = { PATH: process.env.PATH, MYSQL_PWD: APP.password };
    const { stdout } = await run('mysql', ['--no-defaults', ...args(caFile)], { env });
    expect(stdout).toMatch(/^Ssl_cipher\t\S+/);
    await expect(run('mysql', ['--no-defaults', ...args(otherCaFile)], { env })).rejects.toThrow(
      /certificate|SSL/i,
    );
  });

  it("keeps root's FILE privilege inside the instance's own directory (secure_file_priv)", async () => {
    const { manager, layout } = engines.mariadb!;
    await manager.enableRoot('R00t-secret');
    const conn = await connect(ca.certificate, { user: 'root', password: 'R00t-secret' });
    try {
      const one = async (sql: string) => {
        const [rows] = await conn.query(sql);
        return Object.values((rows as Record<string, unknown>[])[0] ?? {})[0];
      };
      const allowed = String(await one('SELECT @@secure_file_priv'));
      expect(allowed.startsWith(layout.baseDir)).toBe(true);
      // Readable by the engine's OS user, yet not through the engine: another instance's files
      // (the Redis instance's config, holding its password) and the host's.
      const redisConf = join(engines.redis!.layout.baseDir, 'conf', 'redis.conf');
      expect(await one(`SELECT LOAD_FILE(${conn.escape(redisConf)})`)).toBeNull();
      expect(await one("SELECT LOAD_FILE('/etc/passwd')")).toBeNull();
      await expect(conn.query("SELECT 'x' INTO OUTFILE '/tmp/troveless-escape.txt'")).rejects.toThrow(
        /secure-file-priv/,
      );
      // Inside its own directory FILE still works: the limit is a place, not a ban.
      const own = join(allowed, 'export.txt');
      await conn.query(`SELECT 'mine' INTO OUTFILE ${conn.escape(own)}`);
      expect(String(await one(`SELECT LOAD_FILE(${conn.escape(own)})`))).toBe('mine\n');
    } finally {
      await conn.end();
    }
  });
});

describe('PostgreSQL', () => {
  const connect = async (trusted: string) => {
    const { layout } = engines.postgresql!;
    const client = new pg.Client({
      host: layout.bindAddress,
      port: layout.port,
      user: APP.name,
      password: APP.password,
      database: 'appdb',
      ssl: { ca: trusted, rejectUnauthorized: true },
      connectionTimeoutMillis: 5_000,
    });
    client.on('error', () => {});
    await client.connect();
    return client;
  };

  it('serves TLS with the instance certificate to a client verifying against the CA', async () => {
    const client = await connect(ca.certificate);
    try {
      const { rows } = await client.query('SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()');
      expect(rows[0]?.ssl).toBe(true);
    } finally {
      await client.end();
    }
  });

  it('is refused by a client that trusts another CA', async () => {
    await expect(connect(otherCa.certificate)).rejects.toThrow(/certificate/i);
  });

  it('answers psql with sslmode=verify-full, and only for the name the certificate carries', async () => {
    const { layout } = engines.postgresql!;
    const conninfo = (root: string, host = layout.bindAddress) =>
      `hostaddr=${layout.bindAddress} host=${host} port=${layout.port} user=${APP.name} dbname=appdb sslmode=verify-full sslrootcert=${root}`;
    const env = { PATH: process.env.PATH, PGPASSWORD: APP.password, PGCONNECT_TIMEOUT: '5' };
    const psql = (info: string) => run('psql', [info, '-Atc', 'SHOW ssl'], { env });
    expect((await psql(conninfo(caFile))).stdout.trim()).toBe('on');
    await expect(psql(conninfo(otherCaFile))).rejects.toThrow(/certificate verify failed/);
    await expect(psql(conninfo(caFile, 'other.example.test'))).rejects.toThrow(/does not match host name/);
  });
});

describe('Redis', () => {
  const connect = async (trusted: string, password?: string) => {
    const { layout } = engines.redis!;
    const client = new Redis({
      host: layout.bindAddress,
      port: layout.port,
      password,
      tls: { ca: trusted, rejectUnauthorized: true },
      lazyConnect: true,
      connectTimeout: 5_000,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    // ioredis opens with HELLO; a refusal (NOAUTH, a TLS error) comes as an event.
    let refused: Error | undefined;
    client.on('error', (err: Error) => {
      refused = err;
    });
    await client.connect().catch((err: unknown) => {
      client.disconnect();
      throw refused ?? err;
    });
    return client;
  };
  const get = async (key: string, password?: string, trusted = ca.certificate) => {
    const client = await connect(trusted, password);
    try {
      return await client.get(key);
    } finally {
      client.disconnect();
    }
  };

  it('has a password from the first moment: no client gets in without one', async () => {
    await expect(get('k')).rejects.toThrow(/NOAUTH/);
    await expect(get('k', 'guess')).rejects.toThrow(/WRONGPASS/);
  });

  it('enabling root gives a password that works over TLS; enabling again rotates it', async () => {
    await engines.redis!.manager.enableRoot('first-Pass-1');
    const client = await connect(ca.certificate, 'first-Pass-1');
    await client.set('k', 'v');
    client.disconnect();
    expect(await get('k', 'first-Pass-1')).toBe('v');

    await engines.redis!.manager.enableRoot('second-Pass-2');
    await expect(get('k', 'first-Pass-1')).rejects.toThrow(/WRONGPASS/);
    expect(await get('k', 'second-Pass-2')).toBe('v');
  });

  it('is refused by a client that trusts another CA, and by a client without TLS', async () => {
    await expect(get('k', 'second-Pass-2', otherCa.certificate)).rejects.toThrow(/certificate/i);
    const { layout } = engines.redis!;
    const plain = new Redis({
      host: layout.bindAddress,
      port: layout.port,
      password: 'second-Pass-2',
      lazyConnect: true,
      connectTimeout: 3_000,
      commandTimeout: 3_000,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    plain.on('error', () => {});
    await expect(plain.connect().then(() => plain.get('k'))).rejects.toThrow();
    plain.disconnect();
  });

  it('answers redis-cli --tls with the CA, and not with another CA', async () => {
    const { layout } = engines.redis!;
    const cli = (root: string) =>
      run(
        'redis-cli',
        ['--tls', '--cacert', root, '-h', layout.bindAddress, '-p', String(layout.port), 'GET', 'k'],
        { env: { PATH: process.env.PATH, REDISCLI_AUTH: 'second-Pass-2' } },
      );
    expect((await cli(caFile)).stdout.trim()).toBe('v');
    const refused = await cli(otherCaFile).then(
      (r) => r.stdout + r.stderr,
      (err: { stdout?: string; stderr?: string }) => `${err.stdout}${err.stderr}`,
    );
    expect(refused).toMatch(/certificate verify failed/);
  });

  it('disabling root leaves a password only the agent knows, never none', async () => {
    await engines.redis!.manager.disableRoot();
    await expect(get('k', 'second-Pass-2')).rejects.toThrow(/WRONGPASS/);
    await expect(get('k')).rejects.toThrow(/NOAUTH/);
    expect(await engines.redis!.manager.status()).toBe('healthy');
    // Kept in a file only root (the agent) may read; Redis reads its copy in its own config.
    const conf = await readFile(join(engines.redis!.layout.baseDir, 'conf', 'redis.conf'), 'utf8');
    expect(conf).toMatch(/^requirepass /m);
  });
});

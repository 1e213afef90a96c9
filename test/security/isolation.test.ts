import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat, statfs } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { filesystemStats } from '../../agent/engines/fs.ts';
import { AGENT_RUNTIME_ENV } from '../../lib/compute/agent-runtime.ts';
import type { Server, ServerSpec } from '../../lib/compute/driver.ts';
import { LocalComputeDriver } from '../../lib/compute/local.ts';
import { type ComputeHost, startComputeHost, stopComputeLeftovers } from '../../local/compute/host.ts';
import { tryTool } from '../../local/compute/run.ts';
import { lookupUser, processesOf } from '../../local/compute/users.ts';
import { freePort } from '../../local/ports.ts';
import { untilPrepared } from './prepared.ts';

// The local compute host's isolation, tried as a tenant with root on instance A would try it:
// A's engine and A's OS user must reach nothing of instance B (files, sockets, TCP), nothing of
// the host (its API secret), and A's limits (volume, memory, allowed_cidrs) must hold. The
// engines are real; a small agent (engine-agent.ts) prepares them with root enabled, so the
// whole cloud is not needed. Runs as root on Linux, as CI does.

const repoRoot = resolve(import.meta.dirname, '../..');
const ROOT_PASSWORD = 'Root-Pass-1234';

let stateDir = '';
let host: ComputeHost;
let driver: LocalComputeDriver;
const servers: Record<'pgA' | 'pgB' | 'mariaA', Server> = {} as never;

function specFor(
  manager: 'postgresql' | 'mariadb',
  ram: number,
  endpoints?: Record<string, string>,
  vcpus = 1,
): ServerSpec {
  const id = randomUUID();
  return {
    instance_id: id,
    name: `sec-${manager}`,
    flavor: { id: 'sec', ram, vcpus },
    volume_size_gb: 1,
    datastore: { manager, version: manager === 'postgresql' ? '15' : '10.11' },
    agent: {
      instance_id: id,
      datastore_manager: manager,
      datastore_version: '',
      key: ROOT_PASSWORD, // the test agent enables root with it
      guest_queue_url: 'http://127.0.0.1:1/queue/guest',
      conductor_queue_url: 'http://127.0.0.1:1/queue/conductor',
      region: 'us-east-1',
      report_interval: 10,
      endpoints,
    },
  };
}

const baseDirOf = (s: Server) => join(stateDir, 'compute', s.id);
const addressOf = (s: Server) => s.addresses[0]?.address ?? '';
const recordOf = async (s: Server) =>
  JSON.parse(await readFile(join(stateDir, 'compute', 'servers', `${s.id}.json`), 'utf8')) as {
    agentPid: number;
    isolation: { osUser: string; uid: number; cgroupProcs: string[] };
  };
const osUserOf = async (s: Server) => (await recordOf(s)).isolation.osUser;

const ready = (s: Server) => untilPrepared(stateDir, s, s.id, 90_000);

/** Runs a command as an OS user (runuser), as a tenant's program would run. */
const asUser = (user: string, command: string, args: string[]) =>
  tryTool('runuser', ['-u', user, '--', command, ...args]);

async function pgRoot(s: Server): Promise<pg.Client> {
  const client = new pg.Client({
    host: addressOf(s),
    port: 5432,
    user: 'postgres',
    password: ROOT_PASSWORD,
    database: 'postgres',
  });
  await client.connect();
  return client;
}

/** Runs `program` through COPY ... FROM PROGRAM on A as root: its output lines, or its error. */
async function copyFromProgram(
  client: pg.Client,
  program: string,
): Promise<{ lines?: string[]; error?: string }> {
  await client.query('CREATE TEMP TABLE IF NOT EXISTS out (line text); TRUNCATE out');
  try {
    await client.query(`COPY out FROM PROGRAM ${client.escapeLiteral(program)}`);
    return { lines: (await client.query<{ line: string }>('SELECT line FROM out')).rows.map((r) => r.line) };
  } catch (err) {
    // PostgreSQL says how the program ended in the error's detail ("exit code 3").
    const e = err as Error & { detail?: string };
    return { error: `${e.message}${e.detail ? `: ${e.detail}` : ''}` };
  }
}

/** A TCP connection from `localAddress` to address:port: 'accepted' or the error code. */
function tcpFrom(localAddress: string, address: string, port: number): Promise<string> {
  return new Promise((done) => {
    const socket = connect({ host: address, port, localAddress, timeout: 5_000 });
    socket.once('connect', () => {
      socket.destroy();
      done('accepted');
    });
    socket.once('error', (err: NodeJS.ErrnoException) => done(err.code ?? err.message));
    socket.once('timeout', () => {
      socket.destroy();
      done('timeout');
    });
  });
}

beforeAll(async () => {
  stateDir = await mkdtemp(join(tmpdir(), 'troveless-security-'));
  host = await startComputeHost({
    port: await freePort(),
    stateDir,
    repoRoot,
    agentCommand: (configPath) => ({
      command: process.execPath,
      args: ['--import', 'tsx', join(repoRoot, 'test', 'security', 'engine-agent.ts'), configPath],
    }),
  });
  driver = new LocalComputeDriver(host.endpoint, host.secret);
  // A caller tries to have the root-run agent load code of its own through the environment.
  const injected = {
    NODE_OPTIONS: '--require /nonexistent/injected.js',
    AWS_ENDPOINT_URL_SQS: 'http://evil',
  };
  const [pgA, pgB, mariaA] = await Promise.all([
    driver.launch(specFor('postgresql', 512, injected)),
    driver.launch(specFor('postgresql', 512)),
    driver.launch(specFor('mariadb', 768, undefined, 2)),
  ]);
  Object.assign(servers, { pgA, pgB, mariaA });
  await Promise.all([ready(pgA), ready(pgB), ready(mariaA)]);
}, 180_000);

afterAll(async () => {
  await host?.close({ stopServers: true }).catch(() => {});
  if (stateDir) {
    await stopComputeLeftovers({ stateDir, repoRoot }).catch(() => {});
    await rm(stateDir, { recursive: true, force: true });
  }
});

describe('compute host isolation (root on Linux)', () => {
  it('gives each instance its own OS user, address on the standard port, and private directories', async () => {
    const a = await recordOf(servers.pgA);
    const b = await recordOf(servers.pgB);
    expect(a.isolation.osUser).not.toBe(b.isolation.osUser);
    expect(servers.pgA.addresses).toEqual([
      { address: expect.stringMatching(/^127\.77\./), type: 'private' },
    ]);
    expect(addressOf(servers.pgA)).not.toBe(addressOf(servers.pgB));
    const postmaster = Number(
      (await readFile(join(baseDirOf(servers.pgA), 'data', 'postmaster.pid'), 'utf8')).split('\n')[0],
    );
    const status = await readFile(`/proc/${postmaster}/status`, 'utf8');
    expect(/^Uid:\s+(\d+)/m.exec(status)?.[1]).toBe(String(a.isolation.uid));
    for (const dir of ['data', 'run']) {
      const info = await stat(join(baseDirOf(servers.pgA), dir));
      expect(info.uid).toBe(a.isolation.uid);
      expect(info.mode & 0o777).toBe(0o700);
    }
    // Its engine serves on its own address and the standard port.
    const client = await pgRoot(servers.pgA);
    expect((await client.query('SHOW port')).rows[0]?.port).toBe('5432');
    await client.end();
  });

  it("keeps B's files and socket out of reach of A's OS user", async () => {
    const userA = await osUserOf(servers.pgA);
    const dirB = baseDirOf(servers.pgB);
    const read = await asUser(userA, 'cat', [join(dirB, 'data', 'PG_VERSION')]);
    expect(read.code).not.toBe(0);
    expect(read.stderr).toMatch(/Permission denied/);
    const list = await asUser(userA, 'ls', [join(dirB, 'data')]);
    expect(list.stderr).toMatch(/Permission denied/);
    const socket = await asUser(userA, 'psql', [
      '-h',
      join(dirB, 'run'),
      '-U',
      'postgres',
      '-Atc',
      'SELECT 1',
    ]);
    expect(socket.code).not.toBe(0);
    expect(socket.stdout).not.toContain('1');
    // B's own user does get in through its socket: the refusal above is about A, not the socket.
    const own = await asUser(await osUserOf(servers.pgB), 'psql', [
      '-h',
      join(dirB, 'run'),
      '-U',
      'postgres',
      '-Atc',
      'SELECT 1',
    ]);
    expect(own.stdout.trim()).toBe('1');
  });

  it("runs COPY ... PROGRAM on A as A's own user, which reaches nothing of B or of the host", async () => {
    const client = await pgRoot(servers.pgA);
    try {
      expect(await copyFromProgram(client, 'id -un')).toEqual({ lines: [await osUserOf(servers.pgA)] });
      const dirB = baseDirOf(servers.pgB);
      const readB = await copyFromProgram(client, `cat ${join(dirB, 'data', 'PG_VERSION')}`);
      expect(readB.error).toMatch(/program .* failed/);
      const writeB = await copyFromProgram(client, `touch ${join(dirB, 'data', 'planted')}`);
      expect(writeB.error).toMatch(/program .* failed/);
      expect(existsSync(join(dirB, 'data', 'planted'))).toBe(false);
      const socketB = await copyFromProgram(
        client,
        `psql -h ${join(dirB, 'run')} -U postgres -Atc 'SELECT 1'`,
      );
      expect(socketB.error).toMatch(/program .* failed/);
      // Over TCP: A's user opens no connection to B's address (nor to the host's API), while its
      // own address answers, so the tool itself works.
      const tcp = (address: string, port: number) =>
        `${process.execPath} -e "require('net').connect(${port},'${address}').on('connect',()=>process.exit(0)).on('error',()=>process.exit(3))"`;
      expect(await copyFromProgram(client, tcp(addressOf(servers.pgA), 5432))).toEqual({ lines: [] });
      expect((await copyFromProgram(client, tcp(addressOf(servers.pgB), 5432))).error).toMatch(/exit code 3/);
      const hostPort = Number(new URL(host.endpoint).port);
      expect((await copyFromProgram(client, tcp('127.0.0.1', hostPort))).error).toMatch(/exit code 3/);
      const secret = await copyFromProgram(client, `cat ${join(stateDir, 'compute', 'host-secret')}`);
      expect(secret.error).toMatch(/program .* failed/);
    } finally {
      await client.end();
    }
  });

  it("answers 401 without its bearer secret, which A's OS user cannot read", async () => {
    for (const headers of [{}, { authorization: 'Bearer wrong' }, { authorization: host.secret }]) {
      const res = await fetch(`${host.endpoint}/servers`, { headers: headers as Record<string, string> });
      expect(res.status).toBe(401);
    }
    const del = await fetch(`${host.endpoint}/servers/${servers.pgB.id}`, { method: 'DELETE' });
    expect(del.status).toBe(401);
    expect((await driver.get(servers.pgB.id))?.status).toBe('ACTIVE');
    const secretFile = join(stateDir, 'compute', 'host-secret');
    expect((await stat(secretFile)).mode & 0o777).toBe(0o600);
    const read = await asUser(await osUserOf(servers.pgA), 'cat', [secretFile]);
    expect(read.code).not.toBe(0);
    expect(read.stdout).not.toContain(host.secret);
  });

  it("builds the agent's environment from an allow-list: a caller's variables never reach it", async () => {
    const { agentPid } = await recordOf(servers.pgA);
    const environ = (await readFile(`/proc/${agentPid}/environ`, 'utf8')).split('\0');
    // The one NODE_OPTIONS it has is the runtime setting every agent runs with, not the caller's.
    expect(environ.filter((v) => v.startsWith('NODE_OPTIONS='))).toEqual([
      `NODE_OPTIONS=${AGENT_RUNTIME_ENV.NODE_OPTIONS}`,
    ]);
    expect(environ.join('\n')).not.toContain('injected.js');
    expect(environ).not.toContain('AWS_ENDPOINT_URL_SQS=http://evil');
    expect(environ.some((v) => v.startsWith('TROVELESS_COMPUTE_SECRET='))).toBe(false);
    expect((await driver.get(servers.pgA.id))?.status).toBe('ACTIVE');
  });

  it("makes the flavor's RAM and vCPUs the engine's cgroup limits, and sizes the engine from it", async () => {
    const pid = Number(
      (await readFile(join(baseDirOf(servers.mariaA), 'run', 'mariadbd.pid'), 'utf8')).trim(),
    );
    const cgroups = await readFile(`/proc/${pid}/cgroup`, 'utf8');
    const v1 = /^\d+:memory:(.+)$/m.exec(cgroups)?.[1];
    const v2 = /^0::(.+)$/m.exec(cgroups)?.[1];
    const limitFile = v1
      ? join('/sys/fs/cgroup/memory', v1, 'memory.limit_in_bytes')
      : join('/sys/fs/cgroup', v2 ?? '', 'memory.max');
    expect(limitFile).toContain(servers.mariaA.id);
    expect(Number(await readFile(limitFile, 'utf8'))).toBe(768 * 1024 * 1024);
    // Its flavor's 2 vCPUs: a CFS quota of two periods (v1 cpu.cfs_quota_us, v2 cpu.max).
    const cpuV1 = /^\d+:(?:[^:]*,)?cpu(?:,[^:]*)?:(.+)$/m.exec(cgroups)?.[1];
    if (cpuV1) {
      const cpuDir = join('/sys/fs/cgroup/cpu', cpuV1);
      expect(cpuDir).toContain(servers.mariaA.id);
      const period = Number(await readFile(join(cpuDir, 'cpu.cfs_period_us'), 'utf8'));
      expect(period).toBeGreaterThan(0);
      expect(Number(await readFile(join(cpuDir, 'cpu.cfs_quota_us'), 'utf8'))).toBe(2 * period);
    } else {
      const [quota, period] = (await readFile(join('/sys/fs/cgroup', v2 ?? '', 'cpu.max'), 'utf8'))
        .trim()
        .split(' ')
        .map(Number);
      expect(quota).toBe(2 * (period ?? 0));
    }
    const conn = await mysql.createConnection({
      host: addressOf(servers.mariaA),
      port: 3306,
      user: 'root',
      password: ROOT_PASSWORD,
    });
    try {
      const [rows] = await conn.query('SELECT @@innodb_buffer_pool_size AS pool');
      // Trove's template: half the flavor's RAM.
      expect(Number((rows as { pool: string }[])[0]?.pool)).toBe(384 * 1024 * 1024);
    } finally {
      await conn.end();
    }
  });

  it('enforces allowed_cidrs on the instance address, and a change applies at once', async () => {
    const address = addressOf(servers.pgA);
    // Trove's default (no list) is 0.0.0.0/0.
    expect(await tcpFrom('127.9.9.9', address, 5432)).toBe('accepted');
    await driver.applyAccess(servers.pgA.id, { is_public: false, allowed_cidrs: ['127.10.0.0/16'] });
    expect(await tcpFrom('127.9.9.9', address, 5432)).toBe('ECONNREFUSED');
    expect(await tcpFrom('127.10.3.4', address, 5432)).toBe('accepted');
    // Other instances keep their own rules.
    expect(await tcpFrom('127.9.9.9', addressOf(servers.pgB), 5432)).toBe('accepted');
    await driver.applyAccess(servers.pgA.id, { allowed_cidrs: ['127.9.9.0/24'] });
    expect(await tcpFrom('127.9.9.9', address, 5432)).toBe('accepted');
    expect(await tcpFrom('127.10.3.4', address, 5432)).toBe('ECONNREFUSED');
    // Public changes where an instance can be reached from (Trove: a floating IP), never who:
    // a public instance still admits its allowed_cidrs only, the host's own 127.0.0.1 included.
    await driver.applyAccess(servers.pgA.id, { is_public: true, allowed_cidrs: ['127.9.9.0/24'] });
    expect(await tcpFrom('127.9.9.9', address, 5432)).toBe('accepted');
    expect(await tcpFrom('127.10.3.4', address, 5432)).toBe('ECONNREFUSED');
    expect(await tcpFrom('127.0.0.1', address, 5432)).toBe('ECONNREFUSED');
    await driver.applyAccess(servers.pgA.id, {});
    expect(await tcpFrom('127.10.3.4', address, 5432)).toBe('accepted');
  });

  it("fails the engine's writes on a full volume with its own error, keeps the other data, shows the disk full", async () => {
    const s = servers.pgA;
    const dataDir = join(baseDirOf(s), 'data');
    const userA = await osUserOf(s);
    const client = await pgRoot(s);
    try {
      await client.query('CREATE TABLE kept (id int PRIMARY KEY, v text); CREATE TABLE filler (b text)');
      await client.query("INSERT INTO kept VALUES (1, 'one'), (2, 'two')");
      // Out of disk, PostgreSQL fails a table's extension with an ERROR but a new WAL segment
      // with a PANIC. So the WAL goes on to a fresh segment (written out whole, 16 MB, by the
      // commit after the switch) before the disk fills; the test writes far less WAL than that.
      await client.query('SELECT pg_switch_wal()');
      await client.query("INSERT INTO kept VALUES (3, 'three')");
      await client.query('CHECKPOINT');
      const volume = await statfs(dataDir);
      expect(volume.blocks * volume.bsize).toBeGreaterThan(0.9 * 1024 ** 3);
      expect(volume.blocks * volume.bsize).toBeLessThanOrEqual(1024 ** 3);
      // A tenant's file fills it, written as A's OS user into A's data dir: most at once, the
      // last blocks by dd until the filesystem itself says no.
      const bulk = volume.bavail * volume.bsize - 16 * 1024 * 1024;
      expect((await asUser(userA, 'fallocate', ['-l', String(bulk), join(dataDir, 'ballast')])).code).toBe(0);
      const dd = await asUser(userA, 'dd', ['if=/dev/zero', `of=${join(dataDir, 'ballast-tail')}`, 'bs=1M']);
      expect(dd.stderr).toMatch(/No space left on device/);
      // The engine's own disk-full error (SQLSTATE 53100), and the server stays up.
      const failure = await client
        .query("INSERT INTO filler SELECT repeat('x', 1000) FROM generate_series(1, 5000)")
        .then(
          () => undefined,
          (err: Error & { code?: string }) => err,
        );
      expect(failure?.code).toBe('53100');
      // XFS refuses the new file before ext4 would refuse the extension: either is the engine's own.
      expect(failure?.message).toMatch(/could not (extend|create) file .*No space left on device/);
      // The data already there is intact and readable, on a new session too.
      const reader = await pgRoot(s);
      const rows = (await reader.query('SELECT id, v FROM kept ORDER BY id')).rows;
      await reader.end();
      expect(rows).toEqual([
        { id: 1, v: 'one' },
        { id: 2, v: 'two' },
        { id: 3, v: 'three' },
      ]);
      // What the heartbeat reports as volume.used: the filesystem's own figure, the whole disk.
      const full = await statfs(dataDir);
      const stats = await filesystemStats(dataDir, true);
      expect(stats.total_bytes).toBe(full.blocks * full.bsize);
      expect(stats.free_bytes).toBeLessThan(1024 * 1024);
      expect(stats.used_bytes / stats.total_bytes).toBeGreaterThan(0.97);
    } finally {
      await client.end().catch(() => {});
      await rm(join(dataDir, 'ballast'), { force: true });
      await rm(join(dataDir, 'ballast-tail'), { force: true });
    }
    // With room again, the same write succeeds: the engine stayed up through it.
    const after = await pgRoot(s);
    try {
      await after.query("INSERT INTO filler VALUES ('back')");
      expect((await after.query('SELECT count(*)::int AS n FROM filler')).rows).toEqual([{ n: 1 }]);
    } finally {
      await after.end();
    }
  });

  it('leaves nothing behind after delete: no user, mount, loop device, cgroup or firewall rule', async () => {
    const all = Object.values(servers);
    const before = await Promise.all(all.map(async (s) => ({ s, record: await recordOf(s) })));
    const uidA = before.find((b) => b.s === servers.pgA)?.record.isolation.uid ?? -1;
    expect((await processesOf(uidA)).length).toBeGreaterThan(0); // its engine
    for (const s of all) await driver.terminate(s.id);
    const mounts = await readFile('/proc/mounts', 'utf8');
    const loops = (await tryTool('losetup', ['-a'])).stdout;
    const rules = (await tryTool('nft', ['list', 'ruleset'])).stdout;
    expect(await processesOf(uidA)).toEqual([]);
    for (const { s, record } of before) {
      expect(await lookupUser(record.isolation.osUser)).toBeUndefined();
      expect(mounts).not.toContain(s.id);
      expect(loops).not.toContain(s.id);
      for (const procs of record.isolation.cgroupProcs) expect(existsSync(resolve(procs, '..'))).toBe(false);
      expect(rules).not.toContain(addressOf(s));
      expect(existsSync(baseDirOf(s))).toBe(false);
    }
    await host.close({ stopServers: true });
    // Powered off, the host's own table goes too (and only it: no other table is touched).
    expect((await tryTool('nft', ['list', 'tables'])).stdout).not.toContain(
      host.guests.isolation.firewallTable,
    );
  }, 180_000);
});

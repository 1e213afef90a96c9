import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, statfs } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngineManager, type DatastoreManager } from '../../agent/engines/index.ts';
import type { EngineManager } from '../../agent/engines/manager.ts';
import type { AgentConfigFile, Server, ServerSpec } from '../../lib/compute/driver.ts';
import { ComputeHostError, LocalComputeDriver } from '../../lib/compute/local.ts';
import { type ComputeHost, startComputeHost, stopComputeLeftovers } from '../../local/compute/host.ts';
import { freePort } from '../../local/ports.ts';
import { untilPrepared } from './prepared.ts';

// Resize against the compute host and real engines, for every engine: what the resize workflows
// ask of the compute driver (new cgroup limits, an extended volume) and of the guest (engine
// restarted with the new flavor's memory, filesystem grown online), without the whole cloud. The
// e2e test (test/e2e/resize.test.ts) drives one engine through the API and the CLI.

const repoRoot = resolve(import.meta.dirname, '../..');
const ROOT_PASSWORD = 'Root-Pass-1234';
const MB = 1024 * 1024;
const ENGINES: DatastoreManager[] = ['mariadb', 'postgresql', 'redis'];

let stateDir = '';
let host: ComputeHost;
let driver: LocalComputeDriver;
const servers = new Map<
  DatastoreManager,
  { server: Server; engine: EngineManager; config: AgentConfigFile }
>();

function specFor(manager: DatastoreManager): ServerSpec {
  const id = randomUUID();
  return {
    instance_id: id,
    name: `resize-${manager}`,
    flavor: { id: '7', ram: 512, vcpus: 1 },
    volume_size_gb: 1,
    datastore: { manager, version: '' },
    agent: {
      instance_id: id,
      datastore_manager: manager,
      datastore_version: '',
      key: ROOT_PASSWORD,
      guest_queue_url: 'http://127.0.0.1:1/queue/guest',
      conductor_queue_url: 'http://127.0.0.1:1/queue/conductor',
      region: 'us-east-1',
      report_interval: 10,
    },
  };
}

const baseDirOf = (s: Server) => join(stateDir, 'compute', s.id);

/** The memory limit of the server's cgroup (v1 or v2, whichever the machine mounts). */
async function cgroupMemoryLimit(s: Server): Promise<number> {
  const v2 = join('/sys/fs/cgroup/troveless', s.id, 'memory.max');
  const v1 = join('/sys/fs/cgroup/memory/troveless', s.id, 'memory.limit_in_bytes');
  return Number((await readFile(existsSync(v2) ? v2 : v1, 'utf8')).trim());
}

/** The engine's main process is in the server's cgroup (it joined before it exec'd). */
async function engineCgroups(s: Server): Promise<string> {
  const files = ['data/postmaster.pid', 'run/mariadbd.pid', 'run/redis-server.pid'];
  for (const file of files) {
    const text = await readFile(join(baseDirOf(s), file), 'utf8').catch(() => undefined);
    if (text) return readFile(`/proc/${Number(text.split('\n')[0])}/cgroup`, 'utf8');
  }
  throw new Error(`no engine pid file under ${baseDirOf(s)}`);
}

/** The flavor-sized memory setting, in bytes, as the running engine reports it. */
async function memorySetting(manager: DatastoreManager, engine: EngineManager): Promise<number> {
  const name = { mariadb: 'innodb_buffer_pool_size', postgresql: 'shared_buffers', redis: 'maxmemory' }[
    manager as 'mariadb' | 'postgresql' | 'redis'
  ];
  const value = (await engine.currentValues([name]))[name] ?? '';
  const mb = /^(\d+)MB$/.exec(value);
  if (mb) return Number(mb[1]) * MB;
  // pg_settings gives shared_buffers in its unit, 8 kB blocks.
  return manager === 'postgresql' ? Number(value) * 8192 : Number(value);
}

/** What each engine's configure() derives from the flavor's RAM (agent/engines/<engine>.ts). */
function expectedMemory(manager: DatastoreManager, ramMb: number): number {
  if (manager === 'mariadb') return Math.max(16, Math.floor(ramMb / 2)) * MB;
  if (manager === 'postgresql') return Math.max(16, Math.floor(ramMb / 4)) * MB;
  return Math.max(8, Math.floor((ramMb * 3) / 4)) * MB;
}

beforeAll(async () => {
  stateDir = await mkdtemp(join(tmpdir(), 'troveless-resize-'));
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
  const launched = await Promise.all(ENGINES.map((m) => driver.launch(specFor(m))));
  await Promise.all(launched.map((server, i) => untilPrepared(stateDir, server, `${ENGINES[i]}`, 120_000)));
  for (const [i, server] of launched.entries()) {
    const manager = ENGINES[i] as DatastoreManager;
    const config = JSON.parse(
      await readFile(join(baseDirOf(server), 'agent.json'), 'utf8'),
    ) as AgentConfigFile;
    servers.set(manager, { server, config, engine: await createEngineManager(manager, config.layout) });
  }
}, 180_000);

afterAll(async () => {
  await host?.close({ stopServers: true }).catch(() => {});
  if (stateDir) {
    await stopComputeLeftovers({ stateDir, repoRoot }).catch(() => {});
    await rm(stateDir, { recursive: true, force: true });
  }
});

describe.each(ENGINES)('resize on %s (compute host, real engine)', (manager) => {
  const of = () => {
    const s = servers.get(manager);
    if (!s) throw new Error(`${manager} was not launched`);
    return s;
  };

  it('follows the flavor up and down: cgroup limit, memory settings, data kept', async () => {
    const { server, engine } = of();
    const marker = `kept_${manager}`;
    if (manager !== 'redis') await engine.createDatabases([{ name: marker }]);
    expect(await cgroupMemoryLimit(server)).toBe(512 * MB);
    expect(await memorySetting(manager, engine)).toBe(expectedMemory(manager, 512));

    for (const flavor of [
      { id: '8', ram: 1024, vcpus: 2 },
      { id: 'small', ram: 256, vcpus: 1 },
    ]) {
      // The workflow's order: stop_db, the server's resize, start_db_with_conf_changes.
      const started = performance.now();
      await engine.stop();
      await driver.resize(server.id, flavor);
      await engine.startWithMemory(flavor.ram);
      const ms = performance.now() - started;
      console.log(`${manager}: resize to ${flavor.ram} MB took ${ms.toFixed(0)} ms`);
      expect(await cgroupMemoryLimit(server)).toBe(flavor.ram * MB);
      expect(await engineCgroups(server)).toContain(server.id);
      expect(await memorySetting(manager, engine)).toBe(expectedMemory(manager, flavor.ram));
      expect(await engine.status()).toBe('healthy');
      if (manager !== 'redis') expect((await engine.listDatabases()).map((d) => d.name)).toContain(marker);
      // The host keeps the flavor: a reboot of the host recreates the cgroups with it.
      const record = JSON.parse(
        await readFile(join(stateDir, 'compute', 'servers', `${server.id}.json`), 'utf8'),
      ) as { flavor: { ram: number } };
      expect(record.flavor.ram).toBe(flavor.ram);
    }
  });

  it('grows the volume and its filesystem online while the engine serves; never shrinks it', async () => {
    const { server, engine } = of();
    const before = await engine.filesystemStats();
    expect(before.total_bytes).toBeLessThan(1.01 * 1024 ** 3);
    await driver.extendVolume(server.id, 2);
    const grown = await engine.resizeFilesystem();
    // ext4's own metadata takes a few percent; df inside the instance says the same.
    expect(grown.total_bytes).toBeGreaterThan(1.9 * 1024 ** 3);
    const fs = await statfs(baseDirOf(server));
    expect(fs.blocks * fs.bsize).toBe(grown.total_bytes);
    expect(await engine.status()).toBe('healthy');
    // Again with the same size: nothing to do, no error.
    await driver.extendVolume(server.id, 2);
    expect((await engine.resizeFilesystem()).total_bytes).toBe(grown.total_bytes);
    await expect(driver.extendVolume(server.id, 1)).rejects.toBeInstanceOf(ComputeHostError);
    await expect(driver.extendVolume(server.id, 1)).rejects.toMatchObject({ status: 400 });
  });
});

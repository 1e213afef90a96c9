import { randomUUID } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { AWAIT_LAUNCH_FLAG } from '../../lib/compute/agent-runtime.ts';
import type { AgentConfigFile } from '../../lib/compute/driver.ts';
import { LocalComputeDriver } from '../../lib/compute/local.ts';
import { type ComputeHost, startComputeHost, stopComputeLeftovers } from '../../local/compute/host.ts';
import { cmdlineOf, isAlive } from '../../local/compute/procs.ts';
import { createUser, lookupUser, removeUser, userNameFor } from '../../local/compute/users.ts';
import { freePort } from '../../local/ports.ts';
import { waitUntil } from '../../local/wait.ts';
import { FAKE_AGENT, specFor } from './compute-fakes.ts';

const repoRoot = resolve(import.meta.dirname, '../..');

const hosts: ComputeHost[] = [];
const seenPids = new Set<number>();
const logs: string[] = [];
let stateDir = '';

const fakeAgent = (configPath: string) => ({
  command: process.execPath,
  args: ['-e', FAKE_AGENT, configPath],
});

async function startHost(
  agentCommand = fakeAgent,
): Promise<{ host: ComputeHost; driver: LocalComputeDriver }> {
  stateDir ||= await mkdtemp(join(tmpdir(), 'troveless-compute-'));
  const host = await startComputeHost({
    port: await freePort(),
    stateDir,
    repoRoot,
    log: (line) => logs.push(line),
    agentCommand,
  });
  hosts.push(host);
  return { host, driver: new LocalComputeDriver(host.endpoint, host.secret) };
}

const baseDirOf = (serverId: string) => join(stateDir, 'compute', serverId);
const serverPathsOf = (serverId: string) => ({
  baseDir: baseDirOf(serverId),
  configPath: join(baseDirOf(serverId), 'agent.json'),
});

/** The host's own record of the server: the only place the agent's pid is written down. */
async function agentPid(serverId: string): Promise<number> {
  const record = JSON.parse(await readFile(join(stateDir, 'compute', 'servers', `${serverId}.json`), 'utf8'));
  const pid = (record as { agentPid?: number }).agentPid;
  if (!pid) throw new Error(`no agent pid recorded for ${serverId}`);
  seenPids.add(pid);
  return pid;
}

/** The fake engine's pid, once the agent has written it. */
async function enginePid(serverId: string): Promise<number> {
  const pid = await waitUntil('engine.pid', async () => {
    const text = await readFile(join(baseDirOf(serverId), 'engine.pid'), 'utf8').catch(() => '');
    return /^\d+\n$/.test(text) ? Number(text) : undefined;
  });
  seenPids.add(pid);
  return pid;
}

/**
 * Agents of this test's host waiting for a launch that has not come (AWAIT_LAUNCH_FLAG, no record
 * of a server yet), with the server ids they were spawned for.
 */
function spareAgents(): { id: string; pid: number }[] {
  const found: { id: string; pid: number }[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let cmdline = '';
    try {
      cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8').replaceAll('\0', ' ');
    } catch {
      continue; // exited meanwhile
    }
    const id = cmdline.match(/\/compute\/(srv-[0-9a-f-]+)\/agent\.json/)?.[1];
    if (!id || !cmdline.includes(stateDir) || !cmdline.includes(AWAIT_LAUNCH_FLAG)) continue;
    if (!existsSync(join(stateDir, 'compute', 'servers', `${id}.json`)))
      found.push({ id, pid: Number(entry) });
  }
  return found;
}

/** The niceness of each of a process's threads, once each. */
async function nicenesses(pid: number): Promise<number[]> {
  const seen = new Set<number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    const stat = await readFile(`/proc/${pid}/task/${tid}/stat`, 'utf8').catch(() => '');
    // Field 19 (niceness), counted after the command name's closing parenthesis (field 2).
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (fields[16] !== undefined) seen.add(Number(fields[16]));
  }
  return [...seen];
}

const gone = (pid: number) =>
  waitUntil(`pid ${pid} gone`, async () => ((await isAlive(pid)) ? undefined : true));

afterAll(async () => {
  for (const host of hosts) await host.close({ stopServers: true }).catch(() => {});
  // Should nothing else have stopped them, nothing outlives the test.
  for (const pid of seenPids) {
    const cmdline = await cmdlineOf(pid);
    if (!(await isAlive(pid)) || !(cmdline.includes(stateDir) || cmdline.includes('sleep 600'))) continue;
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {}
    try {
      process.kill(pid, 'SIGKILL');
    } catch {}
  }
  // A test that failed before terminating its servers leaves their users, volumes and rules:
  // they go with the state dir's servers, as a wiped local cloud's do.
  if (stateDir) await stopComputeLeftovers({ stateDir, repoRoot }).catch(() => {});
  if (stateDir) await rm(stateDir, { recursive: true, force: true });
});

describe('local compute host', () => {
  it('launches idempotently, survives a host restart, reports a dead agent, deletes everything', async () => {
    const first = await startHost();
    const spec = specFor(randomUUID());

    const server = await first.driver.launch(spec);
    expect(server.status).toBe('ACTIVE');
    expect(server.instance_id).toBe(spec.instance_id);
    // Its own address, the engine on its standard port (so no port is shown), as Trove's guests.
    expect(server.addresses).toHaveLength(1);
    const address = server.addresses[0];
    expect(address?.address).toMatch(/^127\.77\.\d+\.\d+$/);
    expect(address?.port).toBeUndefined();

    const baseDir = baseDirOf(server.id);
    expect((await stat(baseDir)).mode & 0o777).toBe(0o711);
    const configPath = join(baseDir, 'agent.json');
    expect((await stat(configPath)).mode & 0o777).toBe(0o600);
    const config = JSON.parse(await readFile(configPath, 'utf8')) as AgentConfigFile;
    expect(config).toMatchObject({
      key: spec.agent.key,
      layout: { baseDir, port: 6379, bindAddress: address?.address },
      flavor: spec.flavor,
    });
    const record = await readFile(join(stateDir, 'compute', 'servers', `${server.id}.json`), 'utf8');
    expect(record).not.toContain(spec.agent.key);

    const agent = await agentPid(server.id);
    const engine = await enginePid(server.id);
    expect(await isAlive(agent)).toBe(true);

    // A retried launch step gets the same server, not a second agent.
    expect(await first.driver.launch(spec)).toEqual(server);
    expect(await agentPid(server.id)).toBe(agent);

    // The host goes away and comes back: the running agent is adopted, not restarted.
    await first.host.close();
    expect(await isAlive(agent)).toBe(true);
    const second = await startHost();
    expect(await second.driver.get(server.id)).toEqual(server);
    expect(await agentPid(server.id)).toBe(agent);

    process.kill(agent, 'SIGKILL');
    const down = await waitUntil('SHUTDOWN', async () => {
      const s = await second.driver.get(server.id);
      return s?.status === 'SHUTDOWN' ? s : undefined;
    });
    expect(down.fault).toContain('agent.log');
    expect(await isAlive(engine)).toBe(true); // the engine outlived its agent: delete must find it

    await second.driver.terminate(server.id);
    expect(await isAlive(engine)).toBe(false);
    expect(existsSync(baseDir)).toBe(false);
    expect(await second.driver.get(server.id)).toBeUndefined();
    await expect(second.driver.terminate(server.id)).resolves.toBeUndefined();
    await expect(second.driver.terminate(`srv-${randomUUID()}`)).resolves.toBeUndefined();
    await second.host.close();
  });

  it("takes an instance's port before its launch, keeps it across a restart, launches on it, frees it", async () => {
    const first = await startHost();
    const launched = randomUUID();
    const neverLaunched = randomUUID();
    const portFile = (id: string) => join(stateDir, 'compute', 'ports', `${id}.json`);

    // The address the server will have, before it exists; asked again, the same one.
    const [port] = await first.driver.createPort(launched, 'redis');
    expect(port?.address).toMatch(/^127\.77\.\d+\.\d+$/);
    expect(await first.driver.createPort(launched, 'redis')).toEqual([port]);
    const [other] = await first.driver.createPort(neverLaunched, 'redis');
    expect(other?.address).not.toBe(port?.address);
    // Only instance ids name ports, and only managers with a known port.
    await expect(first.driver.createPort('../servers', 'redis')).rejects.toThrow(/404/);
    await expect(first.driver.createPort(randomUUID(), 'oracle')).rejects.toThrow(/400.*standard port/s);

    // The host dies during a launch on it: started again, it takes the half-made server apart and
    // keeps the port, so the launch retried gets the address the certificate names.
    await first.host.close();
    const halfMade = `srv-${randomUUID()}`;
    await writeFile(
      join(stateDir, 'compute', 'servers', `${halfMade}.json`),
      JSON.stringify({
        ...specFor(launched),
        agent: {},
        id: halfMade,
        created: new Date().toISOString(),
        ...serverPathsOf(halfMade),
        address: port?.address,
        port: 6379,
        enginePidFiles: [],
        launching: true,
        state: 'running',
      }),
    );
    const second = await startHost();
    expect(existsSync(join(stateDir, 'compute', 'servers', `${halfMade}.json`))).toBe(false);
    expect(await second.driver.createPort(launched, 'redis')).toEqual([port]);

    // The launch takes the port's address, which the certificate was issued for.
    const server = await second.driver.launch(specFor(launched));
    await agentPid(server.id);
    expect(server.addresses).toEqual([port]);
    expect(await second.driver.createPort(launched, 'redis')).toEqual([port]);

    // The server's delete takes its port along; a build that never launched deletes its own.
    await second.driver.terminate(server.id);
    expect(existsSync(portFile(launched))).toBe(false);
    expect(existsSync(portFile(neverLaunched))).toBe(true);
    await second.driver.deletePort(neverLaunched);
    expect(existsSync(portFile(neverLaunched))).toBe(false);
    await expect(second.driver.deletePort(neverLaunched)).resolves.toBeUndefined();
    await second.host.close({ stopServers: true });
  });

  it('stops every guest on close({ stopServers }) and reboots them on the next start', async () => {
    const first = await startHost();
    const spec = specFor(randomUUID());
    const server = await first.driver.launch(spec);
    const agent = await agentPid(server.id);
    const engine = await enginePid(server.id);

    await first.host.close({ stopServers: true });
    await gone(agent);
    await gone(engine);
    // Powered off: its volume is no longer mounted (nothing of it outlives the host).
    expect(readFileSync('/proc/mounts', 'utf8')).not.toContain(server.id);

    const second = await startHost();
    const rebooted = await second.driver.get(server.id);
    expect(rebooted?.status).toBe('ACTIVE');
    expect(existsSync(join(baseDirOf(server.id), 'agent.json'))).toBe(true); // its data came back
    expect(rebooted?.addresses).toEqual(server.addresses); // same port: the engine's config keeps it
    const newAgent = await agentPid(server.id);
    expect(newAgent).not.toBe(agent);
    expect(await isAlive(newAgent)).toBe(true);
    const newEngine = await waitUntil('a new engine', async () => {
      const pid = await enginePid(server.id);
      return pid === engine ? undefined : pid;
    });

    await second.driver.terminate(server.id);
    expect(await isAlive(newAgent)).toBe(false);
    expect(await isAlive(newEngine)).toBe(false);
    await second.host.close({ stopServers: true });
    expect(logs.some((l) => l.startsWith('adopted '))).toBe(true);
  });

  it('shows SHUTDOWN with a fault when a guest cannot be rebooted, and still deletes it', async () => {
    const first = await startHost();
    const server = await first.driver.launch(specFor(randomUUID()));
    const agent = await agentPid(server.id);
    await enginePid(server.id);
    await first.host.close({ stopServers: true });
    await gone(agent);

    // The next host cannot start its agent (a program that is not there).
    const second = await startHost(() => ({ command: join(stateDir, 'no-such-agent'), args: [] }));
    const broken = await second.driver.get(server.id);
    expect(broken?.status).toBe('SHUTDOWN');
    expect(broken?.fault).toMatch(/could not be started/);
    await second.driver.terminate(server.id);
    expect(existsSync(baseDirOf(server.id))).toBe(false);
    await second.host.close({ stopServers: true });
  });

  it('keeps an agent spawned ahead of the next launch of a manager, and leaves none when it closes', async () => {
    const { host, driver } = await startHost();
    const first = await driver.launch(specFor(randomUUID()));
    const waiting = () => spareAgents().filter((s) => s.id !== first.id);
    const [spare] = await waitUntil('a spare agent', async () => {
      const found = waiting();
      return found.length === 1 ? found : undefined;
    });
    if (!spare) throw new Error('no spare');
    seenPids.add(spare.pid);
    // It waits below everything else on the host (a root host can raise it back when it is taken).
    await waitUntil('the spare ready', async () => host.guests.spareIds().includes(spare.id) || undefined);
    const rootHost = process.getuid?.() === 0;
    if (rootHost) expect(await nicenesses(spare.pid)).toEqual([19]);
    // With isolation, its server's own user is made while it waits (off the launch's path).
    const spareUser = await lookupUser(userNameFor(spare.id));
    expect(spareUser === undefined).toBe(!host.guests.isolation.enabled);

    // The next launch of that manager takes it: its server id, its process, at normal priority.
    const second = await driver.launch(specFor(randomUUID()));
    expect(second.id).toBe(spare.id);
    expect(await agentPid(second.id)).toBe(spare.pid);
    await enginePid(second.id);
    if (rootHost) expect(await nicenesses(spare.pid)).toEqual([0]);
    // The launch that took it made no user (its log line has no such phase); the first one did.
    const launchedLine = (id: string) => logs.find((l) => l.startsWith(`launched ${id} `)) ?? '';
    expect(launchedLine(second.id)).toMatch(/spare agent\)$/);
    expect(launchedLine(second.id)).not.toMatch(/\buser \d+ ms/);
    if (spareUser) expect(launchedLine(first.id)).toMatch(/\buser \d+ ms/);
    // The user made for the spare is the server's, in its record (the config its agent runs).
    if (spareUser) {
      const record = JSON.parse(
        await readFile(join(stateDir, 'compute', 'servers', `${second.id}.json`), 'utf8'),
      );
      expect(record.isolation).toMatchObject({ osUser: userNameFor(second.id), uid: spareUser.uid });
    }
    const next = await waitUntil('the next spare', async () => waiting().find((s) => s.id !== second.id));
    seenPids.add(next.pid);
    expect(existsSync(join(stateDir, 'compute', 'logs', `${next.id}.agent.log`))).toBe(true);
    await waitUntil(
      'the next spare ready',
      async () => host.guests.spareIds().includes(next.id) || undefined,
    );
    if (spareUser) expect(await lookupUser(userNameFor(next.id))).toBeDefined();

    // A host that closes ends its spare (and removes its log and user); the servers' agents keep running.
    await host.close();
    await gone(next.pid);
    expect(existsSync(join(stateDir, 'compute', 'logs', `${next.id}.agent.log`))).toBe(false);
    expect(await lookupUser(userNameFor(next.id))).toBeUndefined();
    expect(await isAlive(spare.pid)).toBe(true);
    // A spare's log and user left by a host that was killed go at the next start; servers' stay.
    const strayId = `srv-${randomUUID()}`;
    const stray = join(stateDir, 'compute', 'logs', `${strayId}.agent.log`);
    await writeFile(stray, 'guest agent waiting for its launch\n');
    if (spareUser) await createUser(userNameFor(strayId));
    // A server whose record is there but unreadable is no spare: its log and user stay.
    const unreadId = `srv-${randomUUID()}`;
    const unreadLog = join(stateDir, 'compute', 'logs', `${unreadId}.agent.log`);
    const unreadRecord = join(stateDir, 'compute', 'servers', `${unreadId}.json`);
    await writeFile(unreadLog, 'guest agent started\n');
    await writeFile(unreadRecord, '{ cut short');
    if (spareUser) await createUser(userNameFor(unreadId));
    const after = await startHost();
    expect(existsSync(stray)).toBe(false);
    expect(await lookupUser(userNameFor(strayId))).toBeUndefined();
    expect(existsSync(unreadLog)).toBe(true);
    if (spareUser) expect(await lookupUser(userNameFor(unreadId))).toBeDefined();
    await Promise.all([rm(unreadLog), rm(unreadRecord), removeUser(userNameFor(unreadId))]);
    expect(existsSync(join(stateDir, 'compute', 'logs', `${second.id}.agent.log`))).toBe(true);
    if (spareUser) expect(await lookupUser(userNameFor(second.id))).toEqual(spareUser);
    for (const server of [first, second]) await after.driver.terminate(server.id);
    expect(await isAlive(spare.pid)).toBe(false);
    await after.host.close({ stopServers: true });
  });

  it('starts a fresh agent when the one spawned ahead cannot take its launch, and leaves that one nowhere', async () => {
    // In the state dir (made here when this test runs alone: the host's start would make it).
    stateDir ||= await mkdtemp(join(tmpdir(), 'troveless-compute-'));
    const marker = join(stateDir, 'spares-go-deaf');
    // Agents that, once told to (a marker file), close their stdin while they wait: alive when
    // taken, but the host's word finds no reader (EPIPE), as when a spare dies between being
    // taken and being told to start. Each says so in a file of its own (marker.<pid>).
    const deafOrFake = `
      if (process.argv.includes('${AWAIT_LAUNCH_FLAG}')) {
        const check = setInterval(() => {
          if (!require('node:fs').existsSync('${marker}')) return;
          clearInterval(check);
          process.stdin.destroy();
          require('node:fs').closeSync(0);
          require('node:fs').writeFileSync('${marker}.' + process.pid, '');
          setInterval(() => {}, 1000);
        }, 10);
        process.stdin.once('data', () => clearInterval(check));
      }
      ${FAKE_AGENT}`;
    const { host, driver } = await startHost((configPath) => ({
      command: process.execPath,
      args: ['-e', deafOrFake, configPath],
    }));
    const first = await driver.launch(specFor(randomUUID()));
    await enginePid(first.id);
    const spare = await waitUntil('a spare ready', async () => {
      const ready = host.guests.spareIds().filter((id) => id !== first.id);
      return ready.length ? spareAgents().find((s) => s.id === ready[0]) : undefined;
    });
    seenPids.add(spare.pid);
    await writeFile(marker, '');
    await waitUntil('the spare deaf', async () => (existsSync(`${marker}.${spare.pid}`) ? true : undefined));

    const second = await driver.launch(specFor(randomUUID()));
    expect(second.id).toBe(spare.id);
    // Its agent is a fresh one, running the server's config; the spare is gone.
    const pid = await agentPid(second.id);
    expect(pid).not.toBe(spare.pid);
    await enginePid(second.id);
    await gone(spare.pid);
    expect(
      logs.some((l) => l.startsWith(`${second.id}: the agent started ahead did not take its launch`)),
    ).toBe(true);
    expect((await driver.get(second.id))?.status).toBe('ACTIVE');
    await Promise.all([rm(marker), rm(`${marker}.${spare.pid}`)]);
    for (const server of [first, second]) await driver.terminate(server.id);
    expect(await isAlive(pid)).toBe(false);
    await host.close({ stopServers: true });
  });

  it('stops and removes the guests a vanished host left running (before a wipe), without rebooting them', async () => {
    const first = await startHost();
    const server = await first.driver.launch(specFor(randomUUID()));
    const agent = await agentPid(server.id);
    const engine = await enginePid(server.id);
    await first.host.close(); // as if the local cloud had been killed: the guest keeps running
    expect(await isAlive(agent)).toBe(true);

    await stopComputeLeftovers({ stateDir, repoRoot });
    expect(await isAlive(agent)).toBe(false);
    expect(await isAlive(engine)).toBe(false);
    // Not rebooted but removed for good (the state dir goes next): no record, no base dir.
    await expect(agentPid(server.id)).rejects.toThrow();
    expect(existsSync(baseDirOf(server.id))).toBe(false);
  });
});

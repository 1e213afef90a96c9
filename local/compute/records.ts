import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { GuestAgentConfig, ServerSpec } from '../../lib/compute/driver.ts';

// What the compute host remembers about each server, one JSON file per server, so that a host
// started again on the same state directory finds its guests (adopts or reboots them).

const SERVER_ID = /^srv-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Ids reach file paths: only ids of our own shape are ever used there. */
export function isServerId(id: string): boolean {
  return SERVER_ID.test(id);
}

/**
 * A server's agent log, root's alone, beside the servers' directories (not on their volumes,
 * which are not mounted yet when an agent starts ahead of its launch).
 */
/** Where a server lives on the host: its base dir (its volume's mount point) and its agent's config. */
export function serverPaths(computeDir: string, serverId: string): { baseDir: string; configPath: string } {
  const baseDir = join(computeDir, serverId);
  return { baseDir, configPath: join(baseDir, 'agent.json') };
}

export function agentLogDir(computeDir: string): string {
  return join(computeDir, 'logs');
}

const AGENT_LOG_SUFFIX = '.agent.log';

export function agentLogPath(computeDir: string, serverId: string): string {
  return join(agentLogDir(computeDir), `${serverId}${AGENT_LOG_SUFFIX}`);
}

/** The server id an agent log's file name is for, if it is one. */
export function serverOfAgentLog(fileName: string): string | undefined {
  const id = fileName.endsWith(AGENT_LOG_SUFFIX) ? fileName.slice(0, -AGENT_LOG_SUFFIX.length) : '';
  return isServerId(id) ? id : undefined;
}

export function newServerId(): string {
  return `srv-${randomUUID()}`;
}

export interface ServerRecord {
  id: string;
  instance_id: string;
  name: string;
  flavor: ServerSpec['flavor'];
  volume_size_gb: number;
  /** What the volume is formatted with (isolation only; absent = ext4, as before the choice). */
  volume_fstype?: 'ext4' | 'xfs';
  datastore: ServerSpec['datastore'];
  /** The agent's config without its secrets (the key and credentials live only in agent.json). */
  agent: Omit<GuestAgentConfig, 'key' | 'credentials'>;
  created: string;
  baseDir: string;
  configPath: string;
  /** The server's own address in 127.0.0.0/8 (records from before it have none: 127.0.0.1). */
  address?: string;
  /** The engine's port: its standard one on the server's own address. */
  port: number;
  /** Trove's access (allowed_cidrs), enforced by the host's firewall rules. */
  access?: ServerSpec['access'];
  /** The server's own OS user and cgroups, when the host isolates (see isolation.ts). */
  isolation?: { osUser: string; uid: number; cgroupProcs: string[] };
  agentPid?: number;
  /** Engine pid files seen under baseDir, kept so that a later stop knows where to look. */
  enginePidFiles: string[];
  /**
   * Saved before a launch makes anything and cleared once it is done: a host that died in
   * between finds it at start and takes it apart, and the launch, retried, makes it afresh.
   */
  launching?: boolean;
  /** `deleting` survives a crash mid-delete: the next start finishes the job. */
  state: 'running' | 'deleting';
  /** Nova's os-stop: agent and engine stopped on purpose (a failover's fence); kept stopped across host restarts until os-start. */
  stopped?: boolean;
  /**
   * The image a rebuild installed on the server's root (guests.ts rebuild): its own copy of the
   * agent bundle, which its agent runs from then on, across reboots. Absent: the server runs the
   * bundle the host was started with (every server launched and never rebuilt).
   */
  image?: { id: string; bundle: string };
  /** Set when the agent could not be started; cleared by the next successful start. */
  failure?: { status: 'ERROR' | 'SHUTDOWN'; fault: string };
}

export function recordFor(
  id: string,
  spec: ServerSpec,
  layout: { baseDir: string; configPath: string; address: string; port: number },
): ServerRecord {
  const { key: _key, credentials: _credentials, ...agent } = spec.agent;
  return {
    id,
    instance_id: spec.instance_id,
    name: spec.name,
    flavor: spec.flavor,
    volume_size_gb: spec.volume_size_gb,
    datastore: spec.datastore,
    access: spec.access,
    agent,
    created: new Date().toISOString(),
    ...layout,
    enginePidFiles: [],
    state: 'running',
  };
}

export class RecordStore {
  constructor(private readonly dir: string) {}

  /** Whether server `id` has a record file, readable or not. */
  exists(id: string): boolean {
    return existsSync(join(this.dir, `${id}.json`));
  }

  async loadAll(log: (line: string) => void): Promise<ServerRecord[]> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const out: ServerRecord[] = [];
    for (const name of await readdir(this.dir)) {
      // A save its host died in (below): the record it replaced, if any, is whole and stands.
      if (name.endsWith('.tmp')) {
        await rm(join(this.dir, name), { force: true });
        continue;
      }
      const id = name.replace(/\.json$/, '');
      if (!name.endsWith('.json') || !isServerId(id)) continue;
      try {
        const record = JSON.parse(await readFile(join(this.dir, name), 'utf8')) as ServerRecord;
        if (record.id === id) out.push(record);
      } catch (err) {
        log(`ignoring unreadable server record ${name}: ${err instanceof Error ? err.message : err}`);
      }
    }
    return out;
  }

  /** Written to a temporary file and renamed, so a crash never leaves half a record. */
  async save(record: ServerRecord): Promise<void> {
    const path = join(this.dir, `${record.id}.json`);
    const tmp = `${path}.${process.pid}.tmp`;
    await writeFile(tmp, JSON.stringify(record, null, 2), { mode: 0o600 });
    await rename(tmp, path);
  }

  async remove(id: string): Promise<void> {
    await rm(join(this.dir, `${id}.json`), { force: true });
  }
}

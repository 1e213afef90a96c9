import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { allocateAddress } from './addresses.ts';

// Neutron's port on the local compute host: an instance's address, taken before its server is
// launched (`nova boot --nic port-id=`), so that the create workflow issues the instance's
// certificate for it while the server launches. The launch then takes the port's address, and so
// does a launch retried after one taken apart half-way (a failure, a host restart). A port lives
// until its instance's server is deleted, or until it is deleted itself (the delete workflow
// does, for a build that never launched). Records persist (compute/ports/, one file per instance): a host started again never
// gives a reserved address to another server.

const INSTANCE_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Ids reach file paths: only Trove instance ids (UUIDs) are ever used there. */
export function isPortInstanceId(id: string): boolean {
  return INSTANCE_ID.test(id);
}

export interface PortRecord {
  instance_id: string;
  address: string;
  /** The engine's standard port the address was checked free on. */
  port: number;
  created: string;
}

export class Ports {
  private readonly records = new Map<string, PortRecord>();

  constructor(
    private readonly dir: string,
    /** The host's taken addresses (shared with its servers and writers). */
    private readonly addresses: Set<string>,
    private readonly log: (line: string) => void,
  ) {}

  /** The recorded ports: their addresses stay taken (a host start). */
  async load(): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    for (const name of await readdir(this.dir)) {
      const id = name.replace(/\.json$/, '');
      if (!name.endsWith('.json') || !isPortInstanceId(id)) continue;
      try {
        const record = JSON.parse(await readFile(join(this.dir, name), 'utf8')) as PortRecord;
        this.records.set(id, record);
        this.addresses.add(record.address);
      } catch (err) {
        this.log(`port of instance ${id} not loaded: ${err instanceof Error ? err.message : err}`);
      }
    }
  }

  get(instanceId: string): PortRecord | undefined {
    return this.records.get(instanceId);
  }

  /** The instance's port, made with a free address if it has none. The caller holds the instance's lock. */
  async create(instanceId: string, port: number): Promise<PortRecord> {
    if (!isPortInstanceId(instanceId)) throw new RangeError(`${instanceId} is not an instance id`);
    const known = this.records.get(instanceId);
    if (known) return known;
    const address = await allocateAddress(this.addresses, port);
    const record: PortRecord = { instance_id: instanceId, address, port, created: new Date().toISOString() };
    try {
      await this.save(record);
    } catch (err) {
      this.addresses.delete(address);
      throw err;
    }
    this.records.set(instanceId, record);
    return record;
  }

  /** Whether a port holds this address. */
  holds(address: string): boolean {
    for (const record of this.records.values()) if (record.address === address) return true;
    return false;
  }

  /**
   * Forgets the instance's port and returns it; the caller frees its address once no server
   * holds it either. A port that is gone is no error.
   */
  async remove(instanceId: string): Promise<PortRecord | undefined> {
    const record = this.records.get(instanceId);
    if (!record) return undefined;
    await rm(join(this.dir, `${instanceId}.json`), { force: true });
    this.records.delete(instanceId);
    return record;
  }

  /** Written to a temporary file and renamed, so a crash never leaves half a record. */
  private async save(record: PortRecord): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const path = join(this.dir, `${record.instance_id}.json`);
    const tmp = `${path}.${process.pid}.tmp`;
    await writeFile(tmp, JSON.stringify(record, null, 2), { mode: 0o600 });
    await rename(tmp, path);
  }
}

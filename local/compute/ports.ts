import { allocateAddress } from './addresses.ts';
import { isUuid, JsonRecords } from './json-records.ts';

// Neutron's port on the local compute host: an instance's address, taken before its server is
// launched (`nova boot --nic port-id=`), so that the create workflow issues the instance's
// certificate for it while the server launches. The launch then takes the port's address, and so
// does a launch retried after one taken apart half-way (a failure, a host restart). A port lives
// until its instance's server is deleted, or until it is deleted itself (the delete workflow
// does, for a build that never launched). Records persist (compute/ports/, one file per
// instance): a host started again never gives a reserved address to another server.

/** Ids reach file paths: only Trove instance ids (UUIDs) are ever used there. */
export const isPortInstanceId = isUuid;

export interface PortRecord {
  instance_id: string;
  address: string;
  /** The engine's standard port the address was checked free on. */
  port: number;
  created: string;
}

export class Ports {
  private readonly records = new Map<string, PortRecord>();
  private readonly files: JsonRecords<PortRecord>;

  constructor(
    dir: string,
    /** The host's taken addresses (shared with its servers and writers). */
    private readonly addresses: Set<string>,
    private readonly log: (line: string) => void,
  ) {
    this.files = new JsonRecords(dir, isPortInstanceId);
  }

  /** The recorded ports: their addresses stay taken (a host start). */
  async load(): Promise<void> {
    const loaded = await this.files.load((id, err) =>
      this.log(`port of instance ${id} not loaded: ${err instanceof Error ? err.message : err}`),
    );
    for (const [id, record] of loaded) {
      this.records.set(id, record);
      this.addresses.add(record.address);
    }
  }

  get(instanceId: string): PortRecord | undefined {
    return this.records.get(instanceId);
  }

  /** The instance's port, made with a free address if it has none. The caller holds the instance's lock. */
  async create(instanceId: string, port: number): Promise<PortRecord> {
    const known = this.records.get(instanceId);
    if (known) return known;
    const address = await allocateAddress(this.addresses, port);
    const record: PortRecord = { instance_id: instanceId, address, port, created: new Date().toISOString() };
    try {
      await this.files.save(instanceId, record);
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
    await this.files.remove(instanceId);
    this.records.delete(instanceId);
    return record;
  }
}

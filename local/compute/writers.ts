import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { allocateAddress } from './addresses.ts';
import { isUuid, JsonRecords } from './json-records.ts';

// A replica set's writer endpoint on the local compute host (issue 12 #5): a TCP forwarder on an
// address of its own in 127.77.0.0/16, on the engine's standard port, that leads to whichever
// server is the set's source. A plain TCP forwarder, so TLS passes through untouched (the engine
// still presents its own certificate). Its outgoing connections leave from the writer's own
// address, which the source's firewall chain admits (isolation.ts); clients reach the writer
// only from the source's allowed_cidrs. Records persist (compute/writers/), so a host started
// again listens again; moving a writer closes the connections it forwarded to the old source,
// so clients reconnect to the new one with no change of configuration.

export const isWriterId = isUuid;

export interface WriterRecord {
  id: string;
  address: string;
  port: number;
  /** The server it leads to, and where that server's engine listens. */
  server_id: string;
  target: { address: string; port: number };
}

interface Listener {
  server: Server;
  sockets: Set<Socket>;
}

export class Writers {
  private readonly records = new Map<string, WriterRecord>();
  private readonly listeners = new Map<string, Listener>();

  private readonly files: JsonRecords<WriterRecord>;

  constructor(
    dir: string,
    /** The host's taken addresses (shared with its servers): a writer's is never a server's. */
    private readonly addresses: Set<string>,
    private readonly log: (line: string) => void,
  ) {
    this.files = new JsonRecords(dir, isWriterId);
  }

  /** The recorded writers, listening again (a host start). */
  async load(): Promise<WriterRecord[]> {
    const notStarted = (id: string, err: unknown) =>
      this.log(`writer ${id} not started again: ${err instanceof Error ? err.message : err}`);
    for (const [id, record] of await this.files.load(notStarted)) {
      try {
        this.records.set(id, record);
        this.addresses.add(record.address);
        await this.listen(record);
      } catch (err) {
        notStarted(id, err);
      }
    }
    return [...this.records.values()];
  }

  get(id: string): WriterRecord | undefined {
    return this.records.get(id);
  }

  list(): WriterRecord[] {
    return [...this.records.values()];
  }

  /** Creates the writer, or moves it to `target`: idempotent (the same target changes nothing). */
  async point(id: string, serverId: string, target: WriterRecord['target']): Promise<WriterRecord> {
    const known = this.records.get(id);
    if (known && known.server_id === serverId && known.target.address === target.address) {
      if (!this.listeners.has(id)) await this.listen(known);
      return known;
    }
    const address =
      known && known.port === target.port
        ? known.address
        : await allocateAddress(this.addresses, target.port);
    if (known && known.address !== address) this.addresses.delete(known.address);
    const record: WriterRecord = { id, address, port: target.port, server_id: serverId, target };
    await this.files.save(id, record);
    this.records.set(id, record);
    const listener = this.listeners.get(id);
    if (listener && known?.address === address) {
      // Connections to the old source end: its clients reconnect and land on the new one.
      for (const socket of listener.sockets) socket.destroy();
      listener.sockets.clear();
    } else {
      await this.listen(record);
    }
    return record;
  }

  /** Stops listening and forgets the writer for good; a writer that is gone is no error. */
  async remove(id: string): Promise<WriterRecord | undefined> {
    const record = this.records.get(id);
    await this.stop(id);
    this.records.delete(id);
    if (record) this.addresses.delete(record.address);
    await this.files.remove(id);
    return record;
  }

  /** Every listener closes (the host stops); the records stay for the next start. */
  async closeAll(): Promise<void> {
    await Promise.all([...this.listeners.keys()].map((id) => this.stop(id)));
  }

  private async listen(record: WriterRecord): Promise<void> {
    await this.stop(record.id);
    const sockets = new Set<Socket>();
    const server = createServer((client) => {
      // The target is read at each connection: a moved writer sends new clients to the new source.
      const current = this.records.get(record.id);
      if (!current) return client.destroy();
      const upstream = createConnection({
        host: current.target.address,
        port: current.target.port,
        localAddress: current.address,
      });
      for (const s of [client, upstream]) {
        sockets.add(s);
        s.on('close', () => sockets.delete(s));
        s.on('error', () => {
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((ok, fail) => {
      server.once('error', fail);
      server.listen({ host: record.address, port: record.port, exclusive: true }, () => ok());
    });
    this.listeners.set(record.id, { server, sockets });
  }

  private async stop(id: string): Promise<void> {
    const listener = this.listeners.get(id);
    if (!listener) return;
    this.listeners.delete(id);
    for (const socket of listener.sockets) socket.destroy();
    await new Promise<void>((ok) => listener.server.close(() => ok()));
  }
}

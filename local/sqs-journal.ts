import { closeSync, existsSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';

// What the embedded SQS server must not forget at a restart: its queues (with their attributes
// and tags) and every message not yet deleted. Kept as a journal of JSON lines, one per change,
// replayed into a snapshot at start and whenever the journal outgrows the snapshot.

export interface StoredQueue {
  name: string;
  /** As CreateQueue takes them (strings), e.g. VisibilityTimeout, RedrivePolicy. */
  attributes: Record<string, string>;
  tags: Record<string, string>;
}

export interface StoredMessage {
  queue: string;
  id: string;
  body: string;
  attributes?: Record<string, unknown>;
  /** Message system attributes (AWSTraceHeader, DeadLetterQueueSourceArn) in SendMessage's shape. */
  system?: Record<string, { DataType: string; StringValue: string }>;
  group?: string;
  dedup?: string;
  /** Epoch milliseconds. */
  sent: number;
  delaySeconds: number;
  /** ApproximateReceiveCount: kept so a redrive policy still counts receives made before a restart. */
  received: number;
}

export type JournalEntry =
  | ({ op: 'queue' } & StoredQueue)
  | { op: 'drop'; name: string }
  | ({ op: 'send' } & Omit<StoredMessage, 'received'> & { received?: number })
  | { op: 'receive'; id: string; count: number }
  | { op: 'delete'; id: string }
  | { op: 'purge'; queue: string };

/** The state a journal describes; `apply` is the only way it changes. */
export class SqsState {
  readonly queues = new Map<string, StoredQueue>();
  /** In send order, which is the order messages are restored in. */
  readonly messages = new Map<string, StoredMessage>();

  apply(entry: JournalEntry): void {
    switch (entry.op) {
      case 'queue': {
        const { op: _, ...queue } = entry;
        this.queues.set(queue.name, queue);
        return;
      }
      case 'drop':
        this.queues.delete(entry.name);
        this.dropMessages(entry.name);
        return;
      case 'send': {
        const { op: _, ...message } = entry;
        // A redrive to a dead-letter queue sends the same message id again: it moves.
        this.messages.delete(message.id);
        this.messages.set(message.id, { ...message, received: message.received ?? 0 });
        return;
      }
      case 'receive': {
        const message = this.messages.get(entry.id);
        if (message) message.received = entry.count;
        return;
      }
      case 'delete':
        this.messages.delete(entry.id);
        return;
      case 'purge':
        this.dropMessages(entry.queue);
        return;
    }
  }

  /** Messages past their queue's retention period are gone, as in SQS. */
  expire(now: number): number {
    let expired = 0;
    for (const [id, message] of this.messages) {
      const queue = this.queues.get(message.queue);
      const retention = Number(queue?.attributes.MessageRetentionPeriod ?? 345600);
      if (!queue || message.sent + retention * 1000 <= now) {
        this.messages.delete(id);
        expired++;
      }
    }
    return expired;
  }

  /** The shortest journal that rebuilds this state. */
  snapshot(): JournalEntry[] {
    return [
      ...[...this.queues.values()].map((q): JournalEntry => ({ op: 'queue', ...q })),
      ...[...this.messages.values()].map((m): JournalEntry => ({ op: 'send', ...m })),
    ];
  }

  private dropMessages(queue: string): void {
    for (const [id, message] of this.messages) if (message.queue === queue) this.messages.delete(id);
  }
}

/**
 * The journal file. Appends are synchronous writes, so a change is in the file (the OS's page
 * cache, which outlives the process) before the request that made it is answered. Without fsync
 * per append: a restart of the local cloud is a process exit, not a power cut.
 */
export class Journal {
  private fd: number | undefined;
  private size = 0;
  private snapshotSize = 0;

  constructor(
    private readonly file: string,
    /** The journal is rewritten as a snapshot once it is this big and twice the last snapshot. */
    private readonly compactBytes: number,
  ) {}

  /** Reads the journal into a state; a torn last line (a crash mid-write) is skipped. */
  read(): { state: SqsState; unreadable: number } {
    const state = new SqsState();
    let unreadable = 0;
    if (!existsSync(this.file)) return { state, unreadable };
    for (const line of readFileSync(this.file, 'utf8').split('\n')) {
      if (!line) continue;
      try {
        state.apply(JSON.parse(line) as JournalEntry);
      } catch {
        unreadable++;
      }
    }
    return { state, unreadable };
  }

  /** Replaces the journal by `state`'s snapshot (written aside, then renamed over it). */
  rewrite(state: SqsState): void {
    this.close();
    const text = state
      .snapshot()
      .map((e) => `${JSON.stringify(e)}\n`)
      .join('');
    const tmp = `${this.file}.tmp`;
    const fd = openSync(tmp, 'w', 0o600);
    try {
      writeSync(fd, text);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, this.file);
    this.fd = openSync(this.file, 'a');
    this.size = Buffer.byteLength(text);
    this.snapshotSize = this.size;
  }

  append(entry: JournalEntry): void {
    if (this.fd === undefined) throw new Error('SQS journal is closed');
    const line = `${JSON.stringify(entry)}\n`;
    writeSync(this.fd, line);
    this.size += Buffer.byteLength(line);
  }

  get needsCompaction(): boolean {
    return this.size >= this.compactBytes && this.size >= 2 * this.snapshotSize;
  }

  close(): void {
    if (this.fd === undefined) return;
    closeSync(this.fd);
    this.fd = undefined;
  }
}

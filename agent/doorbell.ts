import { DOORBELL_HEADER, doorbellToken } from '../lib/guest/doorbell-token.ts';
import { nowSeconds } from '../lib/guest/signing.ts';
import { pause } from './pause.ts';

// The guest's side of the doorbell (lib/guest/doorbell.ts): one WebSocket connection, held open
// and opened again whenever it closes. Every ring, and every opening (orders may have come while
// it was closed), counts as a reason to poll the queue; the receive loop waits on `wait` while
// the connection is open and nothing has rung. Node's own WebSocket: nothing to load or bundle.

type Log = (line: string, fields?: Record<string, unknown>) => void;

/** A message this often keeps the connection from API Gateway's 10-minute idle close; each is a
 * message and a Lambda invocation (docs/cost.md). */
export const KEEPALIVE_MS = 8 * 60_000;

export interface DoorbellOptions {
  keepaliveMs?: number;
  /** Waits before each attempt after a connection failed or closed, the last one repeated. */
  retryMs?: number[];
  /** A connection that stayed open this long was a good one: the next attempt starts the waits over. */
  steadyMs?: number;
}

/** What the receive loop needs of a doorbell (a fake one in unit tests). */
export interface Bell {
  readonly rings: number;
  readonly open: boolean;
  run(signal: AbortSignal): Promise<void>;
  wait(seen: number, ms: number, signal: AbortSignal): Promise<void>;
}

export class Doorbell implements Bell {
  #rings = 0;
  #open = false;
  #waiters = new Set<() => void>();
  readonly #keepaliveMs: number;
  readonly #retryMs: number[];
  readonly #steadyMs: number;

  constructor(
    private readonly url: string,
    private readonly key: Buffer,
    private readonly instanceId: string,
    private readonly log: Log,
    options: DoorbellOptions = {},
  ) {
    this.#keepaliveMs = options.keepaliveMs ?? KEEPALIVE_MS;
    // Up to 5 minutes: a refused token (a clock far off, a key rotated) is refused again, and
    // each attempt is a $connect call; the guest polls its queue meanwhile.
    this.#retryMs = options.retryMs ?? [1000, 2000, 5000, 10_000, 30_000, 60_000, 120_000, 300_000];
    this.#steadyMs = options.steadyMs ?? 30_000;
  }

  /** Rings and openings so far: a receive loop compares it with what it saw before its last poll. */
  get rings(): number {
    return this.#rings;
  }

  /** Whether a ring can reach this guest now; while not, the guest polls as if there were no doorbell. */
  get open(): boolean {
    return this.#open;
  }

  /** Connects, and connects again after every close, until `signal` aborts. */
  async run(signal: AbortSignal): Promise<void> {
    let failures = 0;
    let said = '';
    while (!signal.aborted) {
      const began = performance.now();
      const outcome = await this.#connectOnce(signal);
      if (signal.aborted) break;
      if (outcome === 'opened') {
        // One that closes at once (a server that takes and drops it) must not reconnect every second.
        if (performance.now() - began >= this.#steadyMs) failures = 0;
        said = '';
      } else if (outcome !== said) {
        // Once per kind of failure, not per attempt: the guest polls meanwhile.
        this.log('doorbell not connected; polling the queue meanwhile', { reason: outcome });
        said = outcome;
      }
      const delay = this.#retryMs[Math.min(failures++, this.#retryMs.length - 1)] ?? 30_000;
      await pause(delay, signal);
    }
  }

  /**
   * Resolves once a ring (or an opening) came after `seen`, the connection closed, `ms` passed or
   * `signal` aborted, whichever is first.
   */
  wait(seen: number, ms: number, signal: AbortSignal): Promise<void> {
    if (this.#rings !== seen || !this.#open || signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        this.#waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal.addEventListener('abort', done, { once: true });
      this.#waiters.add(done);
    });
  }

  #wake(): void {
    for (const waiter of [...this.#waiters]) waiter();
  }

  /** One connection, until it closes: 'opened' if it did open, else why it did not. */
  #connectOnce(signal: AbortSignal): Promise<string> {
    return new Promise((resolve) => {
      let opened = false;
      let ended = false;
      let keepalive: NodeJS.Timeout | undefined;
      const token = doorbellToken(this.key, this.instanceId, nowSeconds());
      // Node's WebSocket (undici) takes headers beside the protocols; the DOM type does not say so.
      const init = { headers: { [DOORBELL_HEADER]: token } } as unknown as string[];
      let socket: WebSocket;
      try {
        socket = new WebSocket(this.url, init);
      } catch (err) {
        resolve((err as Error).message);
        return;
      }
      // On stop, the attempt ends at once: a dead peer would never finish the close handshake.
      const stop = () => {
        socket.close();
        finish('stopped');
      };
      signal.addEventListener('abort', stop, { once: true });
      // A refused or failed handshake fires 'error' and no 'close' (undici): either ends the attempt.
      const finish = (why: string) => {
        // Once: this socket's late 'close' must not mark a later connection as closed.
        if (ended) return;
        ended = true;
        clearInterval(keepalive);
        signal.removeEventListener('abort', stop);
        this.#open = false;
        this.#wake();
        resolve(opened ? 'opened' : why);
      };
      socket.addEventListener('open', () => {
        opened = true;
        this.#open = true;
        this.#rings++;
        this.#wake();
        keepalive = setInterval(() => socket.send('{"action":"keepalive"}'), this.#keepaliveMs);
        keepalive.unref();
      });
      socket.addEventListener('message', () => {
        this.#rings++;
        this.#wake();
      });
      socket.addEventListener('error', () => {
        finish('refused or unreachable');
        if (opened) socket.close();
      });
      socket.addEventListener('close', (event) => finish(`closed (${event.code})`));
    });
  }
}

/**
 * One long-lived admin session for what the agent asks the engine at every heartbeat (its
 * metrics' counters). A session per heartbeat left a line in the tenant's logs at every interval
 * (MariaDB's general log keeps each session's Connect line; PostgreSQL's log_connections one per
 * session) and cost the engine a connection each time (a backend fork, for PostgreSQL).
 *
 * Opened at its first use (the engine's own idle timeout turned off for it, by `open`). A use that
 * fails drops the session and is tried once more on a fresh one: the engine restarted, or a
 * tenant's KILL ended it. Dropped when the engine stops; a close that does not finish within a
 * second (a frozen engine never answers a quit) gives way to `destroy`, so that no stop waits on it.
 */
const CLOSE_WAIT_MS = 1_000;
/**
 * A use that takes longer fails (and the session is dropped): a statement on a session opened
 * before the engine froze would otherwise wait for ever, and the heartbeat with it.
 */
const USE_TIMEOUT_MS = 5_000;

export class KeptSession<S> {
  #session: Promise<S> | undefined;

  constructor(
    private readonly open: () => Promise<S>,
    private readonly close: (session: S) => Promise<void>,
    private readonly destroy: (session: S) => void,
  ) {}

  async use<T>(work: (session: S) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      this.#session ??= this.open();
      const opening = this.#session;
      try {
        return await within(USE_TIMEOUT_MS, opening.then(work));
      } catch (err) {
        await this.drop(opening);
        if (attempt >= 2) throw err;
      }
    }
  }

  /** Closes the session (the one given, if it is still the kept one). */
  async drop(which = this.#session): Promise<void> {
    if (!which || which !== this.#session) return;
    this.#session = undefined;
    const session = await which.catch(() => undefined);
    if (session === undefined) return;
    const closed = await within(CLOSE_WAIT_MS, this.close(session)).then(
      () => true,
      () => false,
    );
    if (!closed) this.destroy(session);
  }
}

async function within<T>(ms: number, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      work,
      new Promise<never>((_, fail) => {
        timer = setTimeout(() => fail(new Error(`no answer from the engine within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

import { withTimeout } from '../../lib/settled.ts';

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
        return await withTimeout('the engine', opening.then(work), USE_TIMEOUT_MS);
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
    const closed = await withTimeout('the engine', this.close(session), CLOSE_WAIT_MS).then(
      () => true,
      () => false,
    );
    if (!closed) this.destroy(session);
  }
}

/**
 * One long-lived admin session for what the agent asks the engine at every heartbeat (its
 * metrics' counters). A session per heartbeat left a line in the tenant's logs at every interval
 * (MariaDB's general log keeps each session's Connect line; PostgreSQL's log_connections one per
 * session) and cost the engine a connection each time (a backend fork, for PostgreSQL).
 *
 * Opened at its first use. A use that fails drops the session and is tried once more on a fresh
 * one: the engine restarted, or a tenant's wait_timeout, idle_session_timeout or KILL ended it.
 * Dropped when the engine stops, so that no stop waits on it.
 */
export class KeptSession<S> {
  #session: Promise<S> | undefined;

  constructor(
    private readonly open: () => Promise<S>,
    private readonly close: (session: S) => Promise<void>,
  ) {}

  async use<T>(work: (session: S) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      this.#session ??= this.open();
      const opening = this.#session;
      try {
        return await work(await opening);
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
    if (session !== undefined) await this.close(session).catch(() => {});
  }
}

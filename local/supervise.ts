/**
 * The wait before starting a service again, by how many times in a row it died soon after it was
 * up (a crash loop backs off, as systemd's and Kubernetes' restarts do); a run this long resets it.
 */
const RESTART_DELAYS_MS = [0, 1_000, 2_000, 5_000, 10_000];
const STABLE_AFTER_MS = 10_000;
/** Starts in a row that never became ready: then it stays down, and says so. */
const MAX_FAILED_STARTS = 5;

/**
 * One run of a service: it settles `exited` with how it ended (an exit code or a signal), once
 * nothing of it runs any more (processes.ts howItEnded).
 */
export interface ServiceRun {
  exited: Promise<string>;
  logPath: string;
}

export interface Supervised<R extends ServiceRun> {
  /** The run serving now. */
  current(): R;
  /** No more starts; `stop` ends the run serving now (or one that was starting). */
  close(stop: (run: R) => Promise<void>): Promise<void>;
}

/**
 * Starts `name` again whenever it exits while the local cloud runs (`start` gives a run that is
 * ready, or throws), as systemd restarts a service: each service keeps its ports and state
 * directory, so what it held is found again, and callers that failed meanwhile retry (workflow
 * states, event-source pollers, a user's client).
 */
export function supervise<R extends ServiceRun>(
  name: string,
  first: R,
  start: () => Promise<R>,
  log: (line: string) => void,
): Supervised<R> {
  let current = first;
  let stopping: ((run: R) => Promise<void>) | undefined;
  let wake: (() => void) | undefined;
  // Read through a call: TypeScript would keep its first narrowing across the awaits.
  const closing = () => stopping;
  const loop = (async () => {
    let quickExits = 0;
    for (;;) {
      const upSince = Date.now();
      const how = await current.exited;
      if (closing()) return;
      quickExits = Date.now() - upSince < STABLE_AFTER_MS ? quickExits + 1 : 0;
      log(`${name} exited (${how}) while the cloud runs; see ${current.logPath}. Starting it again.`);
      for (let failedStarts = 0; ; ) {
        const backoff = Math.max(0, quickExits - 1) + failedStarts;
        const delay = RESTART_DELAYS_MS[Math.min(backoff, RESTART_DELAYS_MS.length - 1)];
        await new Promise<void>((r) => {
          wake = r;
          setTimeout(r, delay).unref();
        });
        if (closing()) return;
        try {
          current = await start();
          // Closed while it started: it goes the way the close asked.
          const stop = closing();
          if (stop) return await stop(current);
          log(`${name} is back`);
          break;
        } catch (err) {
          if (closing()) return;
          log(`${name} did not start again: ${err instanceof Error ? err.message : String(err)}`);
          if (++failedStarts >= MAX_FAILED_STARTS) {
            log(
              `${name} did not start in ${failedStarts} attempts: it stays down until the local cloud starts again`,
            );
            return;
          }
        }
      }
    }
  })();
  return {
    current: () => current,
    async close(stop) {
      stopping = stop;
      wake?.();
      await stop(current);
      await loop;
    },
  };
}

/**
 * A wait that `signal` ends early. Its abort listener goes with it: the agent's loops wait every
 * second, and a listener left on the agent's one signal per wait grew the heap by ~45 MB a day.
 */
export function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}

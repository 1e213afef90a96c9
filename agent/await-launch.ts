import { LAUNCH_GO } from '../lib/compute/agent-runtime.ts';

/**
 * For an agent spawned ahead of its launch (lib/compute/agent-runtime.ts, AWAIT_LAUNCH_FLAG):
 * true once the host writes `go` on stdin, false when stdin ends first. Stdin is let go either
 * way: the agent outlives the host that started it.
 */
export function launchConfirmed(): Promise<boolean> {
  return new Promise((resolve) => {
    let seen = '';
    const done = (go: boolean) => {
      process.stdin.removeAllListeners('data');
      process.stdin.destroy();
      resolve(go);
    };
    process.stdin.setEncoding('utf8');
    process.stdin.on('data', (chunk: string) => {
      seen += chunk;
      const newline = seen.indexOf('\n');
      if (newline >= 0) done(seen.slice(0, newline) === LAUNCH_GO);
    });
    process.stdin.once('end', () => done(false));
    process.stdin.once('error', () => done(false));
  });
}

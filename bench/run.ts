// `npm run bench -- <name> [args]`: one benchmark per module, loaded only when asked for, so a
// bench's heavy imports (AWS SDK, the local cloud) never slow the others down.
import { argv, exit } from 'node:process';

interface Bench {
  /** Runs the benchmark and resolves to the process exit code. */
  run(args: string[]): Promise<number>;
}

// A Map, not an object literal: a name such as `toString` must not resolve to anything.
const benches = new Map<string, () => Promise<Bench>>([
  ['start', () => import('./start.ts')],
  ['provision', () => import('./provision.ts')],
  ['api', () => import('./api.ts')],
  ['heartbeat', () => import('./heartbeat.ts')],
  ['backup', () => import('./backup.ts')],
  ['cost', () => import('./cost.ts')],
  ['coldstart', () => import('./coldstart.ts')],
  ['logs', () => import('./logs.ts')],
  ['resize', () => import('./resize.ts')],
  ['failover', () => import('./failover.ts')],
  ['upgrade', () => import('./upgrade.ts')],
  ['cluster', () => import('./cluster.ts')],
]);

const [name, ...args] = argv.slice(2);
const load = name === undefined ? undefined : benches.get(name);
if (!load) {
  console.error(`usage: npm run bench -- <${[...benches.keys()].join('|')}>`);
  if (name !== undefined) console.error(`unknown bench: ${name}`);
  exit(2);
}
const code = await (await load()).run(args);
// Exit outright: SDK sockets or stray timers must not keep a finished bench alive.
exit(code);

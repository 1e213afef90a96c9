// How the guest agent's node process is started, beyond its command: one set of environment
// variables, the same wherever the agent runs (the local compute host's spawn, the EC2 guest's
// systemd unit through a drop-in written by user data, the backup bench's child), so that what
// `npm run bench -- backup` measures is what production runs. An environment rather than node's
// command line because the EC2 unit's command is the image's: a drop-in can add variables to it,
// not flags. None of these reach the engines or the tools the agent starts (they get a fixed,
// small environment: agent/engines/process.ts, agent/backup/tools.ts).
//
// Both cut the agent's peak memory while it backs up (issue 16: ≤ 100 MB whatever the data size),
// measured with `npm run bench -- backup --mb 200 --load-seconds 20 --try ...`: VmHWM of the
// bundled agent backing up MariaDB / PostgreSQL / Redis, MB, each line a backup of the same run:
//   before the memory-reducing collection (agent/backup/garbage.ts):
//     neither                                             100.8 / 100.5 / 100.8
//     MALLOC_ARENA_MAX=2                                   98.5 /  95.8 /  97.0
//     --max-semi-space-size=1                              94.8 /  96.3 /  98.3
//     both                                                 92.4 /  93.0 /  94.8
//   with it:
//     neither (MALLOC_ARENA_MAX=16 NODE_OPTIONS=)          94.6 /  95.1 /  91.8
//     both                                                 91.4 /  91.6 /  89.5
// (tried and left out, within the runs' noise: MALLOC_ARENA_MAX=1, --max-semi-space-size=2,
// UV_THREADPOOL_SIZE=2, MALLOC_MMAP_THRESHOLD_ and MALLOC_TRIM_THRESHOLD_ at 128 KiB.)

/**
 * - MALLOC_ARENA_MAX=2: glibc gives each thread that allocates (V8's compiler and GC helpers,
 *   libuv's pool) an arena of its own, up to 8 per core, each keeping what was freed in it; two
 *   arenas share the little allocation the agent does off its main thread.
 * - NODE_OPTIONS=--max-semi-space-size=1: V8's young generation grows its semi-spaces (up to
 *   16 MB each) as the agent loads its modules and under a backup's stream of short-lived chunk
 *   handles, and keeps them; at 1 MB, V8's heap at the peak was ~21 MB instead of ~35, at no
 *   measured cost in backup time (the young generation is collected every MiB the pipeline moves
 *   anyway: agent/backup/garbage.ts).
 */
export const AGENT_RUNTIME_ENV: Readonly<Record<string, string>> = Object.freeze({
  MALLOC_ARENA_MAX: '2',
  NODE_OPTIONS: '--max-semi-space-size=1',
});

/**
 * A systemd drop-in giving the agent's unit AGENT_RUNTIME_ENV: `Environment=` lines, each quoted
 * whole (systemd's syntax), for user data to write beside the image's unit.
 */
export function systemdEnvironment(env: Readonly<Record<string, string>> = AGENT_RUNTIME_ENV): string {
  const lines = Object.entries(env).map(([name, value]) => {
    if (!/^[A-Z_][A-Z0-9_]*$/.test(name) || /["\\\n%$]/.test(value)) {
      throw new Error(`${name} cannot be written as a systemd Environment= line`);
    }
    return `Environment="${name}=${value}"`;
  });
  return ['[Service]', ...lines, ''].join('\n');
}

/**
 * The agent's command-line word for "started ahead of its launch" (`main.mjs <config>
 * --await-launch <datastore manager>`): the local compute host spawns the agent while it is
 * still making the server's user, volume, cgroups and rules, so that node's start and the
 * agent's code (the SQS client, its engine's module: ~0.2 s of CPU) load in that time instead of
 * after it. Such an agent reads its config only once the host writes `go` on its stdin, and
 * exits if the stream ends without it (a launch that failed, or a host that died).
 */
export const AWAIT_LAUNCH_FLAG = '--await-launch';
export const LAUNCH_GO = 'go';

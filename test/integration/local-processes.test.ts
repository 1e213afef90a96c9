import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { exitedNow, explainExit, ProcessGroup } from '../../local/processes.ts';
import { waitUntil } from '../../local/wait.ts';

// A service of the local cloud that exits while the cloud waits for it (a port taken, a corrupt
// data dir) fails the start with why: its exit code and the last lines it wrote, from stdout and
// stderr both, none cut off by the other stream ending first.

const dirs: string[] = [];
afterAll(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

async function group() {
  const dir = await mkdtemp(join(tmpdir(), 'troveless-procs-'));
  dirs.push(dir);
  return { dir, procs: new ProcessGroup(join(dir, 'pids.json')) };
}

/** Waits for something that never comes while the process runs; aborts once it has exited. */
const neverReady = (child: { exitCode: number | null }) =>
  waitUntil('the service', async () => undefined, {
    timeoutMs: 30_000,
    intervalMs: 10,
    abort: () => (child.exitCode !== null ? 'it exited' : undefined),
  });

describe('local processes', () => {
  it('says why a service exited while the cloud waited for it: its exit code and the end of its log', async () => {
    const { dir, procs } = await group();
    // Its last line, the one that says why, goes to stderr after its stdout has closed (writes to
    // a pipe are synchronous on Linux); the pause lets the host see stdout end first, as it would
    // for a JVM whose last words come from a shutdown hook.
    const script = [
      "for (let i = 1; i <= 20; i++) console.log('starting ' + i);",
      "require('node:fs').closeSync(1);",
      "setTimeout(() => process.stderr.write('fatal: port 8000 is taken\\n', () => process.exit(3)), 100);",
    ].join('\n');
    const proc = await procs.start({
      name: 'svc',
      command: process.execPath,
      args: ['-e', script],
      logDir: dir,
    });
    const failure = await explainExit(proc, neverReady(proc.child)).then(
      () => undefined,
      (err: Error) => err,
    );
    expect(failure?.message).toMatch(/^the service: it exited \(exit code 3\); the end of .*svc\.log:\n/);
    expect(failure?.message).toContain('fatal: port 8000 is taken');
    expect(failure?.message).toContain('starting 20');
    // The last 15 lines, not the whole log.
    expect(failure?.message).not.toContain('starting 5\n');
    // Both streams' lines are in the log itself.
    const log = await readFile(proc.logPath, 'utf8');
    expect(log).toContain('starting 1\n');
    expect(log.trimEnd().endsWith('fatal: port 8000 is taken')).toBe(true);
    await procs.stopAll();
  });

  it("shows only this run's lines of a log that earlier runs wrote to, and says when a program could not start at all", async () => {
    const { dir, procs } = await group();
    await writeFile(join(dir, 'svc.log'), 'an earlier run: all well\n');
    const proc = await procs.start({
      name: 'svc',
      command: process.execPath,
      args: ['-e', "console.log('this run: bad data dir'); process.exit(1)"],
      logDir: dir,
    });
    const failure = await explainExit(proc, neverReady(proc.child)).catch((err: Error) => err);
    expect(failure?.message).toContain('this run: bad data dir');
    expect(failure?.message).not.toContain('an earlier run');

    const missing = await procs.start({
      name: 'missing',
      command: join(dir, 'no-such-program'),
      args: [],
      logDir: dir,
    });
    const notStarted = await explainExit(
      missing,
      waitUntil('the service', async () => undefined, {
        timeoutMs: 30_000,
        intervalMs: 10,
        abort: () => (exitedNow(missing) ? 'it exited' : undefined),
      }),
    ).catch((err: Error) => err);
    expect(notStarted?.message).toMatch(
      /^the service: it exited \(not started: spawn \S+no-such-program ENOENT\)/,
    );
    await procs.stopAll();
  });

  it('leaves a failure of a running service as it was', async () => {
    const { dir, procs } = await group();
    const proc = await procs.start({
      name: 'slow',
      command: process.execPath,
      args: ['-e', 'setInterval(() => {}, 1000)'],
      logDir: dir,
    });
    const timeout = waitUntil('the service', async () => undefined, { timeoutMs: 50, intervalMs: 10 });
    await expect(explainExit(proc, timeout)).rejects.toThrow(/^the service: not ready after 50 ms$/);
    await procs.stopAll();
    expect(await proc.exited).toBe(null);
  });
});

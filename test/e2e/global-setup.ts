import { existsSync } from 'node:fs';
import { readdir, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { TestProject } from 'vitest/node';
import { LEFTOVER_MARKERS, type LocalCloud, startLocalCloud } from '../../local/cloud.ts';
import { stopComputeLeftovers } from '../../local/compute/host.ts';
import { freePort } from '../../local/ports.ts';
import { reapLeftovers } from '../../local/processes.ts';
import { rateLimits, UNREACHED_RATE_LIMITS } from './rate-limit-settings.ts';

// The e2e suite runs against a whole local cloud of its own: fresh state and free ports, so it
// neither disturbs nor depends on a developer's `npm start`.

let cloud: LocalCloud | undefined;

let stateDir = '';

/** Clouds of earlier test runs that were killed before their teardown: stop them, drop their state. */
async function reapDeadRuns(root: string) {
  const dir = join(root, '.local');
  for (const entry of existsSync(dir) ? await readdir(dir) : []) {
    const pid = /^test-(\d+)$/.exec(entry)?.[1];
    if (!pid || isAlive(Number(pid))) continue;
    await reapLeftovers(join(dir, entry, 'pids.json'), LEFTOVER_MARKERS);
    await stopComputeLeftovers({ stateDir: join(dir, entry), repoRoot: root });
    await rm(join(dir, entry), { recursive: true, force: true });
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export async function setup(project: TestProject) {
  const root = resolve(import.meta.dirname, '../..');
  await reapDeadRuns(root);
  stateDir = join(root, '.local', `test-${process.pid}`);
  const ports = {
    api: await freePort(),
    lambda: await freePort(),
    dynamodb: await freePort(),
    sqs: await freePort(),
    s3: await freePort(),
    stepfunctions: await freePort(),
    compute: await freePort(),
    doorbell: await freePort(),
  };
  cloud = await startLocalCloud({
    root,
    stateDir,
    stage: 'local',
    host: '127.0.0.1',
    ports,
    wipe: true,
    // Shortened so that failures show within a test's patience; every guest and conductor
    // message is sent twice, so the whole suite runs on at-least-once delivery.
    env: {
      TROVELESS_AGENT_HEARTBEAT_EXPIRY: '8',
      TROVELESS_REPORT_INTERVAL: '2',
      TROVELESS_USAGE_TIMEOUT: '120',
      // A guest that does not report within this of its launch fails its build, and a step
      // whose guest is silent this long fails. The agent starts in about a second and reports
      // every 2 s; the margin is for a loaded 2-core machine, where a cold Lambda on the
      // heartbeat's path (send step, conductor) takes tens of seconds.
      TROVELESS_AGENT_BOOT_TIMEOUT: '60',
      TROVELESS_AGENT_SILENCE_TIMEOUT: '30',
      TROVELESS_AGENT_CALL_LOW_TIMEOUT: '20',
      TROVELESS_AGENT_CALL_HIGH_TIMEOUT: '90',
      TROVELESS_BACKUP_TIMEOUT: '40',
      TROVELESS_CHAOS_DUPLICATE_MESSAGES: 'true',
      // Guests rest on their doorbell 5 s after an order (not 60): most of the suite's orders
      // then reach a resting guest by its ring, while the rest poll stays at 300 s, so a ring
      // that does not come shows as a test that waits too long.
      TROVELESS_DOORBELL_BUSY_SECONDS: '5',
      // The tests invoke the scheduled functions themselves, at the moments they choose.
      TROVELESS_SCHEDULES: 'off',
      // Trove's rate limits, enforced: the suite polls far more than 200 requests a minute, so
      // every project gets limits no test reaches, and `throttled` (rate-limits.test.ts) Trove's
      // rules with a GET rate of 12 per minute (a slot every 5 s).
      TROVELESS_RATE_LIMITS: UNREACHED_RATE_LIMITS,
      TROVELESS_PROJECT_RATE_LIMITS: JSON.stringify({ throttled: rateLimits(200, 12) }),
    },
    log: (line) => process.env.TROVELESS_TEST_VERBOSE && console.log(`[cloud] ${line}`),
  });
  project.provide('cloud', { endpoints: cloud.endpoints, env: cloud.env, stateDir });
  // An interrupted run (Ctrl-C) gets no teardown: stop the cloud on the way out instead.
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      void teardown().finally(() => process.exit(130));
    });
  }
}

export async function teardown() {
  await cloud?.stop();
  // Guests go for good before their state does: no OS user, volume, loop device, cgroup or
  // firewall rule of this run is left on the machine.
  if (stateDir) await stopComputeLeftovers({ stateDir, repoRoot: resolve(import.meta.dirname, '../..') });
  await rm(stateDir, { recursive: true, force: true });
}

declare module 'vitest' {
  export interface ProvidedContext {
    cloud: { endpoints: LocalCloud['endpoints']; env: Record<string, string>; stateDir: string };
  }
}

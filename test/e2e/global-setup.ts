import { rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { TestProject } from 'vitest/node';
import { type LocalCloud, startLocalCloud } from '../../local/cloud.ts';
import { freePort } from '../../local/ports.ts';

// The e2e suite runs against a whole local cloud of its own: fresh state and free ports, so it
// neither disturbs nor depends on a developer's `npm start`.

let cloud: LocalCloud | undefined;
let stateDir = '';

export async function setup(project: TestProject) {
  const root = resolve(import.meta.dirname, '../..');
  stateDir = join(root, '.local', `test-${process.pid}`);
  const ports = {
    api: await freePort(),
    lambda: await freePort(),
    dynamodb: await freePort(),
    sqs: await freePort(),
    s3: await freePort(),
    stepfunctions: await freePort(),
    compute: await freePort(),
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
      TROVELESS_AGENT_CALL_LOW_TIMEOUT: '10',
      TROVELESS_AGENT_CALL_HIGH_TIMEOUT: '90',
      TROVELESS_CHAOS_DUPLICATE_MESSAGES: 'true',
    },
    log: (line) => process.env.TROVELESS_TEST_VERBOSE && console.log(`[cloud] ${line}`),
  });
  project.provide('cloud', { endpoints: cloud.endpoints, env: cloud.env, stateDir });
}

export async function teardown() {
  await cloud?.stop();
  await rm(stateDir, { recursive: true, force: true });
}

declare module 'vitest' {
  export interface ProvidedContext {
    cloud: { endpoints: LocalCloud['endpoints']; env: Record<string, string>; stateDir: string };
  }
}

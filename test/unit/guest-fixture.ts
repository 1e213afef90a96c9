import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SQSClient } from '@aws-sdk/client-sqs';
import type { Bell } from '../../agent/doorbell.ts';
import type { EngineManager } from '../../agent/engines/manager.ts';
import { Guest } from '../../agent/guest.ts';
import type { Reporter } from '../../agent/reporter.ts';
import type { AgentConfigFile } from '../../lib/compute/driver.ts';

// A guest agent on a temporary base dir, beside a fake engine and a reporter that keeps what it
// was given (no queue, no conductor). `cleanGuests` removes the dirs (afterEach).

const dirs: string[] = [];

export function cleanGuests(): void {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
}

/**
 * `lostAnswers`: how many of the first answers the reporter fails to send (the queue unreachable);
 * `lostHeartbeats`: whether every heartbeat fails to be sent as well; `sqs` and `doorbell` stand in
 * for the guest's queue client and doorbell.
 */
export function guestWith(
  engine: Partial<EngineManager>,
  config: Partial<AgentConfigFile> = {},
  {
    lostAnswers = 0,
    lostHeartbeats = false,
    sqs = {} as SQSClient,
    doorbell,
  }: { lostAnswers?: number; lostHeartbeats?: boolean; sqs?: SQSClient; doorbell?: Bell } = {},
) {
  const baseDir = mkdtempSync(join(tmpdir(), 'guest-'));
  dirs.push(baseDir);
  const key = randomBytes(32);
  const results: unknown[] = [];
  const heartbeats: unknown[] = [];
  const reporter = {
    result: async (payload: unknown) => {
      if (lostAnswers-- > 0) throw new Error('the conductor queue cannot be reached');
      results.push(payload);
    },
    heartbeat: async (payload: unknown) => {
      if (lostHeartbeats) throw new Error('the conductor queue cannot be reached');
      heartbeats.push(payload);
    },
  } as unknown as Reporter;
  const agentConfig = {
    instance_id: 'i-1',
    report_interval: 1,
    guest_queue_url: 'http://queue',
    datastore_manager: 'redis',
    layout: { baseDir },
    ...config,
  } as unknown as AgentConfigFile;
  const guest = new Guest(agentConfig, key, engine as EngineManager, sqs, reporter, () => {}, doorbell);
  return { guest, key, baseDir, results, heartbeats };
}

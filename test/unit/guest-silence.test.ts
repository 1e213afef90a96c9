import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { isWaitTimeout, lastSeen, silenceFault } from '../../lib/conductor/faults.ts';
import { operationIdOf } from '../../lib/guest/queues.ts';
import type { InstanceItem } from '../../lib/instances/model.ts';

const item = (over: Partial<InstanceItem>) =>
  ({ id: 'i-1', created: '2026-12-03T10:00:00', service_status: 'building', ...over }) as InstanceItem;

describe('what a step that waited in vain says', () => {
  it('names the last heartbeat and the last status', () => {
    const heard = item({
      last_seen_heartbeat: Date.parse('2026-12-03T10:01:30Z') / 1000,
      service_status: 'healthy',
    });
    expect(lastSeen(heard)).toBe('no heartbeat since 2026-12-03T10:01:30; last status healthy');
    const fault = silenceFault(heard, { Error: 'States.HeartbeatTimeout' }, 'restart');
    expect(fault.message).toBe(
      'The guest agent went silent during restart: no heartbeat since 2026-12-03T10:01:30; last status healthy.',
    );
    expect(fault.details).toBe('States.HeartbeatTimeout');
  });

  it('tells a guest that never started from one that went silent, and from a step that ran out of time', () => {
    const never = silenceFault(item({}), { Error: 'States.HeartbeatTimeout' }, 'prepare');
    expect(never.message).toMatch(
      /did not start within its boot timeout: no heartbeat since 2026-12-03T10:00:00/,
    );
    const slow = silenceFault(item({ last_seen_heartbeat: 1 }), { Error: 'States.Timeout' }, 'prepare');
    expect(slow.message).toMatch(/^The guest agent did not finish prepare in time: no heartbeat since 1970/);
    expect(isWaitTimeout({ Error: 'Guest.PrepareFailed' })).toBe(false);
  });
});

describe('order ids', () => {
  it('are the same for every retry of a step (new token, same execution) and differ per method', () => {
    const a = operationIdOf('prepare', 'arn:exec:1', 'token-a');
    expect(operationIdOf('prepare', 'arn:exec:1', 'token-b')).toBe(a);
    expect(operationIdOf('stop_db', 'arn:exec:1', 'token-a')).not.toBe(a);
    expect(operationIdOf('prepare', 'arn:exec:2', 'token-a')).not.toBe(a);
    expect(operationIdOf('restart', undefined, 'token-a')).toBe(
      operationIdOf('prepare', undefined, 'token-a'),
    );
  });
});

describe('heartbeat windows in the state machines', () => {
  const timeouts = (env: Record<string, string>) => {
    const saved = { ...process.env };
    Object.assign(process.env, env);
    try {
      return createRequire(import.meta.url)('../../serverless/timeouts.cjs')();
    } finally {
      process.env = saved;
    }
  };

  it('waits for the boot first in prepare, and stays below each step timeout', () => {
    const t = timeouts({
      TROVELESS_AGENT_HEARTBEAT_EXPIRY: '8',
      TROVELESS_AGENT_BOOT_TIMEOUT: '30',
      TROVELESS_AGENT_CALL_LOW_TIMEOUT: '5',
      TROVELESS_USAGE_TIMEOUT: '120',
    });
    expect(t.heartbeat).toEqual({ prepare: 30, restart: 8, stop: 4, backup: 8 });
  });

  it('refuses a boot timeout that is not a positive number of seconds', () => {
    expect(() => timeouts({ TROVELESS_AGENT_BOOT_TIMEOUT: 'soon' })).toThrow(/TROVELESS_AGENT_BOOT_TIMEOUT/);
  });
});

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { BackupItem } from '../../lib/backups/model.ts';
import { compileSchedule, nextRun } from '../../lib/backups/schedule.ts';
import { eventBridgeCron } from '../../lib/mistral/cron.ts';
import { BACKUP_WORKFLOW } from '../../lib/mistral/model.ts';
import {
  executionView,
  mistralTime,
  type PolicyInstance,
  triggerOf,
  triggerView,
} from '../../lib/mistral/views.ts';

describe('a Mistral cron pattern as a backup policy schedule', () => {
  it('adds the year and leaves the unused day field as ?', () => {
    expect(eventBridgeCron('0 3 * * *')).toBe('cron(0 3 * * ? *)');
    expect(eventBridgeCron('15 */6 1,15 * *')).toBe('cron(15 */6 1,15 * ? *)');
    expect(eventBridgeCron('30 2 * JAN-MAR mon-fri')).toBe('cron(30 2 ? JAN-MAR MON,TUE,WED,THU,FRI *)');
  });

  it('names weekdays, so Unix 0 and 7 (Sunday) are not EventBridge 1-7', () => {
    expect(eventBridgeCron('0 0 * * 0')).toBe('cron(0 0 ? * SUN *)');
    expect(eventBridgeCron('0 0 * * 7')).toBe('cron(0 0 ? * SUN *)');
    expect(eventBridgeCron('0 0 * * 5-7')).toBe('cron(0 0 ? * SUN,FRI,SAT *)');
    expect(eventBridgeCron('0 0 * * */2')).toBe('cron(0 0 ? * SUN,TUE,THU,SAT *)');
  });

  it('refuses what a policy cannot say, with the reason', () => {
    expect(() => eventBridgeCron('0 3 * *')).toThrow(/5 fields/);
    expect(() => eventBridgeCron('0 0 0 3 * * *')).toThrow(/5 fields/);
    expect(() => eventBridgeCron('0 3 1 * 1')).toThrow(/not both/);
    expect(() => eventBridgeCron('0 3 * * 8')).toThrow(/weekday '8'/);
    expect(() => eventBridgeCron('0 3 * * L')).toThrow(/weekday/);
  });

  it('fires on the weekdays Unix cron would', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 59 }),
        fc.integer({ min: 0, max: 23 }),
        fc.uniqueArray(fc.integer({ min: 0, max: 7 }), { minLength: 1, maxLength: 8 }),
        (minute, hour, days) => {
          const schedule = eventBridgeCron(`${minute} ${hour} * * ${days.join(',')}`);
          compileSchedule(schedule);
          const unix = new Set(days.map((d) => d % 7));
          const fired = new Set<number>();
          // Two weeks of runs from a Sunday.
          let t = new Date('2026-11-29T00:00:00Z');
          for (let i = 0; i < 2 * unix.size; i++) {
            t = nextRun(schedule, t);
            expect([t.getUTCHours(), t.getUTCMinutes()]).toEqual([hour, minute]);
            fired.add(t.getUTCDay());
          }
          expect(fired).toEqual(unix);
        },
      ),
    );
  });
});

const policyItem = (over: Partial<PolicyInstance> = {}) =>
  ({
    project_id: 'p1',
    id: 'i1',
    backup_policy: { schedule: 'cron(0 3 * * ? *)', retention: { count: 1000 }, enabled: true },
    backup_policy_created: '2026-12-04T10:20:30.123Z',
    ...over,
  }) as PolicyInstance;

describe('cron triggers and executions as python-mistralclient reads them', () => {
  const input = JSON.stringify({ instance: 'i1', name: 'nightly', description: null, incremental: false });
  const trigger = {
    id: 't-id',
    name: 'a2c0c6f4-0000-4000-8000-000000000001',
    workflow_name: BACKUP_WORKFLOW,
    workflow_input: input,
    workflow_params: '{}',
    pattern: '0 3 * * *',
    remaining_executions: null,
    first_execution_time: null,
    created_at: '2026-12-04 10:20:30',
  };

  it('shows the trigger as made, with its next run from the policy', () => {
    const view = triggerView(policyItem({ backup_policy_trigger: trigger }));
    expect(view).toMatchObject({
      name: trigger.name,
      pattern: '0 3 * * *',
      workflow_input: input,
      workflow_name: 'trove.backup_create',
      next_execution_time: '2026-12-05 03:00:00',
      scope: 'private',
      project_id: 'p1',
    });
    const after = triggerView(
      policyItem({
        backup_policy_trigger: trigger,
        backup_policy_state: { last_run: '2026-12-05T03:00:00.000Z' },
      }),
    );
    expect(after.next_execution_time).toBe('2026-12-06 03:00:00');
  });

  it('shows a policy put on the Trove route as a trigger named after its instance', () => {
    const t = triggerOf(
      policyItem({
        backup_policy: { schedule: 'rate(1 day)', full_every: 7, retention: { count: 3 }, enabled: true },
      }),
    );
    expect(t.name).toBe('i1');
    expect(t.pattern).toBe('rate(1 day)');
    expect(JSON.parse(t.workflow_input)).toMatchObject({ instance: 'i1', incremental: true });
  });

  it('maps backup states to execution states, with the input troveclient matches on', () => {
    const backup = (status: BackupItem['status'], fault?: string) =>
      ({
        project_id: 'p1',
        id: `b-${status}`,
        name: 'scheduled-2026-12-05T03:00Z',
        instance_id: 'i1',
        status,
        fault,
        created: '2026-12-05T03:00:05',
        updated: '2026-12-05T03:01:00',
      }) as BackupItem;
    const views = (['NEW', 'BUILDING', 'COMPLETED', 'FAILED'] as const).map((s) =>
      executionView(backup(s, s === 'FAILED' ? 'the guest stopped answering' : undefined), trigger),
    );
    expect(views.map((v) => v.state)).toEqual(['RUNNING', 'RUNNING', 'SUCCESS', 'ERROR']);
    for (const v of views) expect(JSON.parse(v.input)).toEqual(JSON.parse(input));
    expect(JSON.parse(views[2]!.output)).toEqual({
      backup: { id: 'b-COMPLETED', name: 'scheduled-2026-12-05T03:00Z', status: 'COMPLETED' },
    });
    expect(views[3]!.state_info).toBe('the guest stopped answering');
    expect(views[2]!.created_at).toBe('2026-12-05 03:00:05');
  });

  it('writes times as Mistral does', () => {
    expect(mistralTime(new Date('2026-12-04T10:20:30.999Z'))).toBe('2026-12-04 10:20:30');
  });
});

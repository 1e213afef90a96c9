import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parsePolicy } from '../../lib/backups/policy.ts';

const body = (policy: Record<string, unknown>) => ({
  backup_policy: { schedule: 'rate(6 hours)', retention: { count: 14 }, ...policy },
});

function badRequest(input: unknown): string {
  try {
    parsePolicy(input);
  } catch (err) {
    expect((err as Error).name).toBe('BadRequest');
    return (err as Error).message;
  }
  throw new Error('expected a BadRequest');
}

describe('backup policies', () => {
  it('accept the documented shapes, enabled by default', () => {
    expect(parsePolicy(body({ schedule: 'cron(0 3 * * ? *)', full_every: 7 }))).toEqual({
      schedule: 'cron(0 3 * * ? *)',
      full_every: 7,
      retention: { count: 14 },
      enabled: true,
    });
    expect(
      parsePolicy(body({ schedule: 'rate(1 day)', retention: { days: 30 }, enabled: false })).enabled,
    ).toBe(false);
    expect(parsePolicy(body({ retention: { count: 14, days: 30 } })).retention).toEqual({
      count: 14,
      days: 30,
    });
    for (const schedule of ['rate(1 hour)', 'rate(60 minutes)', 'cron(15 */6 ? * MON-FRI 2025-2030)']) {
      expect(parsePolicy(body({ schedule })).schedule).toBe(schedule);
    }
  });

  it.each([
    ['rate(30 minutes)', /at least 1 hour apart/],
    ['rate(1 hours)', /singular unit for 1/],
    ['rate(2 day)', /plural/],
    ['rate(0 hours)', /1 or more/],
    ['rate(500 days)', /at most 366 days/],
    ['every day', /neither rate/],
    ['cron(*/15 * * * ? *)', /give one minute/],
    ['cron(0 3 * * *)', /6 fields/],
    ['cron(0 3 * * * *)', /exactly one of day-of-month and day-of-week/],
    ['cron(0 3 ? * ? *)', /exactly one of/],
    ['cron(0 24 * * ? *)', /hours: '24' is not in 0-23/],
    ['cron(0 3 ? * FUN *)', /day-of-week: 'FUN' is not in 1-7 or SUN-SAT/],
    ['cron(0 3 ? * 6#3 *)', /L, W, # unsupported/],
    ['cron(0 3 L * ? *)', /day-of-month: 'L'/],
    ['cron(0 3 5-1 * ? *)', /runs backwards/],
    ['cron(0 3 * * ? 1969)', /year: '1969'/],
    ['cron(0 3 30 2 ? *)', /never matches a date/],
    ['cron(? 3 * * ? *)', /only allowed in day-of-month or day-of-week/],
  ])('refuse %s with a message that says why', (schedule, message) => {
    const text = badRequest(body({ schedule }));
    expect(text).toMatch(/^Validation error: backup_policy\['schedule'\] /);
    expect(text).toMatch(message);
  });

  it('refuse bad retention, full_every and unknown fields', () => {
    expect(badRequest(body({ retention: {} }))).toMatch(/retention'\] needs count, days or both/);
    expect(badRequest(body({ retention: { count: 0 } }))).toMatch(/count/);
    expect(badRequest(body({ retention: { weeks: 2 } }))).toMatch(/weeks/);
    expect(badRequest(body({ full_every: 1.5 }))).toMatch(/full_every/);
    expect(badRequest(body({ colour: 'red' }))).toMatch(/colour/);
    expect(badRequest({ policy: {} })).toMatch(/backup_policy/);
  });

  it('answer anything else with a BadRequest, never another error', () => {
    fc.assert(
      fc.property(fc.anything(), fc.string(), (junk, schedule) => {
        for (const input of [junk, body({ schedule }), { backup_policy: junk }]) {
          try {
            expect(typeof parsePolicy(input).schedule).toBe('string');
          } catch (err) {
            expect((err as Error).name).toBe('BadRequest');
          }
        }
      }),
      { numRuns: 300 },
    );
  });
});

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DAY_MS, dueAt, HOUR_MS, isDue, MINUTE_MS, nextRun, parseUtc } from '../../lib/backups/schedule.ts';

const at = (iso: string) => new Date(iso);
const next = (schedule: string, after: string) => nextRun(schedule, at(after)).toISOString();

describe('nextRun', () => {
  it('adds the interval for rate', () => {
    expect(next('rate(6 hours)', '2024-01-01T00:00:30.000Z')).toBe('2024-01-01T06:00:30.000Z');
    expect(next('rate(1 day)', '2024-02-28T12:00:00.000Z')).toBe('2024-02-29T12:00:00.000Z');
    expect(next('rate(90 minutes)', '2024-01-01T23:00:00.000Z')).toBe('2024-01-02T00:30:00.000Z');
  });

  it('finds the next hour, strictly after', () => {
    const hourly = 'cron(0 * * * ? *)';
    expect(next(hourly, '2024-01-01T10:00:00.000Z')).toBe('2024-01-01T11:00:00.000Z');
    expect(next(hourly, '2024-01-01T10:59:59.999Z')).toBe('2024-01-01T11:00:00.000Z');
    expect(next(hourly, '2024-12-31T23:30:00.000Z')).toBe('2025-01-01T00:00:00.000Z');
  });

  it('runs daily at 03:00', () => {
    const daily = 'cron(0 3 * * ? *)';
    expect(next(daily, '2024-01-01T02:59:00.000Z')).toBe('2024-01-01T03:00:00.000Z');
    expect(next(daily, '2024-01-01T03:00:00.000Z')).toBe('2024-01-02T03:00:00.000Z');
    expect(next(daily, '2024-01-01T03:00:30.000Z')).toBe('2024-01-02T03:00:00.000Z');
  });

  it('runs on weekdays by name or by EventBridge number (1 = Sunday)', () => {
    for (const weekdays of [
      'cron(0 3 ? * MON-FRI *)',
      'cron(0 3 ? * 2-6 *)',
      'cron(0 3 ? * mon,tue,wed-fri *)',
    ]) {
      // 2024-01-05 is a Friday.
      expect(next(weekdays, '2024-01-05T02:00:00.000Z')).toBe('2024-01-05T03:00:00.000Z');
      expect(next(weekdays, '2024-01-05T04:00:00.000Z')).toBe('2024-01-08T03:00:00.000Z');
    }
    expect(next('cron(0 3 ? * SUN *)', '2024-01-01T00:00:00.000Z')).toBe('2024-01-07T03:00:00.000Z');
    expect(next('cron(0 3 ? * 1 *)', '2024-01-01T00:00:00.000Z')).toBe('2024-01-07T03:00:00.000Z');
  });

  it('steps from the start of the field or from a given value', () => {
    expect(next('cron(0 */6 * * ? *)', '2024-01-01T07:00:00.000Z')).toBe('2024-01-01T12:00:00.000Z');
    expect(next('cron(0 */6 * * ? *)', '2024-01-01T18:00:00.000Z')).toBe('2024-01-02T00:00:00.000Z');
    expect(next('cron(30 1/4 * * ? *)', '2024-01-01T02:00:00.000Z')).toBe('2024-01-01T05:30:00.000Z');
    expect(next('cron(30 1-9/4 * * ? *)', '2024-01-01T09:31:00.000Z')).toBe('2024-01-02T01:30:00.000Z');
    expect(next('cron(0 0 1/10 * ? *)', '2024-01-21T01:00:00.000Z')).toBe('2024-01-31T00:00:00.000Z');
  });

  it('crosses month and year boundaries, skipping months without the day', () => {
    expect(next('cron(0 0 1 * ? *)', '2024-01-31T12:00:00.000Z')).toBe('2024-02-01T00:00:00.000Z');
    expect(next('cron(0 0 31 * ? *)', '2024-01-31T01:00:00.000Z')).toBe('2024-03-31T00:00:00.000Z');
    expect(next('cron(0 0 30 * ? *)', '2024-01-30T01:00:00.000Z')).toBe('2024-03-30T00:00:00.000Z');
    expect(next('cron(59 23 31 12 ? *)', '2024-12-31T23:59:00.000Z')).toBe('2025-12-31T23:59:00.000Z');
    expect(next('cron(0 6 1 JAN,JUL ? *)', '2024-01-01T07:00:00.000Z')).toBe('2024-07-01T06:00:00.000Z');
  });

  it('finds leap days, including across 2100 which is not a leap year', () => {
    const leap = 'cron(0 12 29 2 ? *)';
    expect(next(leap, '2024-01-01T00:00:00.000Z')).toBe('2024-02-29T12:00:00.000Z');
    expect(next(leap, '2024-03-01T00:00:00.000Z')).toBe('2028-02-29T12:00:00.000Z');
    expect(next(leap, '2096-03-01T00:00:00.000Z')).toBe('2104-02-29T12:00:00.000Z');
  });

  it('honours the year field and says so when there is no later run', () => {
    expect(next('cron(0 0 1 1 ? 2030-2031)', '2024-06-01T00:00:00.000Z')).toBe('2030-01-01T00:00:00.000Z');
    expect(() => nextRun('cron(0 0 1 1 ? 2030-2031)', at('2031-06-01T00:00:00Z'))).toThrow(RangeError);
  });

  it('always moves forward by exactly the interval for rate', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 400 }),
        fc.constantFrom(['minute', MINUTE_MS], ['hour', HOUR_MS], ['day', DAY_MS]),
        fc.date({ min: at('2000-01-01T00:00:00Z'), max: at('2150-01-01T00:00:00Z'), noInvalidDate: true }),
        (n, [unit, ms], after) => {
          const result = nextRun(`rate(${n} ${unit}${n === 1 ? '' : 's'})`, after);
          expect(result.getTime()).toBeGreaterThan(after.getTime());
          expect(result.getTime() - after.getTime()).toBe(n * (ms as number));
        },
      ),
    );
  });

  it('returns the first matching minute after `after` for any cron', () => {
    fc.assert(
      fc.property(
        cronArb,
        fc.date({ min: at('2000-01-01T00:00:00Z'), max: at('2150-01-01T00:00:00Z'), noInvalidDate: true }),
        (cron, after) => {
          fc.pre(feasible(cron));
          const result = nextRun(cron.text, after);
          expect(result.getTime()).toBeGreaterThan(after.getTime());
          expect(matches(cron, result)).toBe(true);
          // An oracle that walks day by day finds no earlier matching minute.
          expect(result.getTime()).toBe(firstMatchAfter(cron, after));
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('isDue', () => {
  const created = at('2024-01-01T00:00:00Z');
  const sixHourly = { schedule: 'rate(6 hours)', enabled: true };

  it('waits for the first occurrence after creation, then one interval after each run', () => {
    expect(isDue(sixHourly, {}, at('2024-01-01T05:59:00Z'), created)).toBe(false);
    expect(isDue(sixHourly, {}, at('2024-01-01T06:00:00Z'), created)).toBe(true);
    const ran = { last_run: '2024-01-01T06:00:00.000Z' };
    expect(isDue(sixHourly, ran, at('2024-01-01T06:00:00Z'), created)).toBe(false);
    expect(isDue(sixHourly, ran, at('2024-01-01T11:59:00Z'), created)).toBe(false);
    expect(isDue(sixHourly, ran, at('2024-01-01T12:04:00Z'), created)).toBe(true);
  });

  it('runs a missed window once, on the schedule grid, not once per window missed', () => {
    const ran = { last_run: '2024-01-01T06:00:00.000Z' };
    const now = at('2024-01-03T07:10:00Z');
    const due = dueAt(sixHourly, ran, now, created);
    expect(due?.toISOString()).toBe('2024-01-03T06:00:00.000Z');
    expect(isDue(sixHourly, { last_run: due!.toISOString() }, now, created)).toBe(false);

    const daily = { schedule: 'cron(0 3 * * ? *)' };
    const cronDue = dueAt(daily, { last_run: '2024-01-01T03:00:00.000Z' }, now, created);
    expect(cronDue?.toISOString()).toBe('2024-01-03T03:00:00.000Z');
    expect(isDue(daily, { last_run: cronDue!.toISOString() }, now, created)).toBe(false);
  });

  it('for cron, counts from creation: a policy put after 03:00 first runs the next day', () => {
    const daily = { schedule: 'cron(0 3 * * ? *)', enabled: true };
    const late = at('2024-01-01T05:00:00Z');
    expect(isDue(daily, {}, at('2024-01-02T02:59:00Z'), late)).toBe(false);
    expect(isDue(daily, {}, at('2024-01-02T03:00:00Z'), late)).toBe(true);
    expect(isDue(daily, {}, at('2024-01-01T03:05:00Z'), at('2024-01-01T02:00:00Z'))).toBe(true);
  });

  it('is never due when disabled', () => {
    expect(isDue({ ...sixHourly, enabled: false }, {}, at('2030-01-01T00:00:00Z'), created)).toBe(false);
  });

  it('reads Trove-style naive timestamps as UTC', () => {
    expect(parseUtc('2019-12-23T20:58:35').toISOString()).toBe('2019-12-23T20:58:35.000Z');
    expect(parseUtc('2019-12-23T20:58:35+01:00').toISOString()).toBe('2019-12-23T19:58:35.000Z');
    expect(isDue(sixHourly, { last_run: '2024-01-01T06:00:00' }, at('2024-01-01T11:59:00Z'), created)).toBe(
      false,
    );
  });
});

// A cron expression together with the sets it stands for, so the oracle does not parse.
interface Cron {
  text: string;
  minutes: Set<number>;
  hours: Set<number>;
  days: Set<number> | null;
  months: Set<number>;
  weekdays: Set<number> | null; // EventBridge numbering, 1 = Sunday
}

const MONTHS = ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'];
const WEEKDAYS = ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'];

function fieldArb(min: number, max: number, names?: string[]) {
  const render = (v: number, named: boolean) => (names && named ? names[v - min]! : String(v));
  const item = fc
    .record({
      kind: fc.constantFrom('star', 'one', 'range', 'starStep', 'fromStep', 'rangeStep'),
      a: fc.integer({ min, max }),
      b: fc.integer({ min, max }),
      step: fc.integer({ min: 1, max: max - min + 1 }),
      named: fc.boolean(),
    })
    .map(({ kind, a, b, step, named }) => {
      const [lo, hi] = [Math.min(a, b), Math.max(a, b)];
      const [text, from, to, by] =
        kind === 'star'
          ? ['*', min, max, 1]
          : kind === 'one'
            ? [render(a, named), a, a, 1]
            : kind === 'range'
              ? [`${render(lo, named)}-${render(hi, named)}`, lo, hi, 1]
              : kind === 'starStep'
                ? [`*/${step}`, min, max, step]
                : kind === 'fromStep'
                  ? [`${render(a, named)}/${step}`, a, max, step]
                  : [`${render(lo, named)}-${render(hi, named)}/${step}`, lo, hi, step];
      const values: number[] = [];
      for (let v = from; v <= to; v += by) values.push(v);
      return { text, values };
    });
  return fc.array(item, { minLength: 1, maxLength: 3 }).map((items) => ({
    text: items.map((i) => i.text).join(','),
    values: new Set(items.flatMap((i) => i.values)),
  }));
}

const cronArb = fc
  .record({
    minutes: fieldArb(0, 59),
    hours: fieldArb(0, 23),
    days: fieldArb(1, 31),
    months: fieldArb(1, 12, MONTHS),
    weekdays: fieldArb(1, 7, WEEKDAYS),
    byWeekday: fc.boolean(),
  })
  .map(({ minutes, hours, days, months, weekdays, byWeekday }): Cron => {
    const [dom, dow] = byWeekday ? ['?', weekdays.text] : [days.text, '?'];
    return {
      text: `cron(${minutes.text} ${hours.text} ${dom} ${months.text} ${dow} *)`,
      minutes: minutes.values,
      hours: hours.values,
      days: byWeekday ? null : days.values,
      months: months.values,
      weekdays: byWeekday ? weekdays.values : null,
    };
  });

// The schedule refuses expressions such as 31 February, which never fire.
function feasible(c: Cron): boolean {
  const longest = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
  return !c.days || [...c.months].some((m) => [...c.days!].some((d) => d <= longest[m - 1]!));
}

function dayMatches(c: Cron, d: Date): boolean {
  if (!c.months.has(d.getUTCMonth() + 1)) return false;
  return c.days ? c.days.has(d.getUTCDate()) : c.weekdays!.has(d.getUTCDay() + 1);
}

function matches(c: Cron, d: Date): boolean {
  return (
    d.getUTCSeconds() === 0 &&
    d.getUTCMilliseconds() === 0 &&
    c.minutes.has(d.getUTCMinutes()) &&
    c.hours.has(d.getUTCHours()) &&
    dayMatches(c, d)
  );
}

function firstMatchAfter(c: Cron, after: Date): number | undefined {
  const start = Date.UTC(after.getUTCFullYear(), after.getUTCMonth(), after.getUTCDate());
  const hours = [...c.hours].sort((a, b) => a - b);
  const minutes = [...c.minutes].sort((a, b) => a - b);
  // Nine years cover the longest gap, 29 February across 2100.
  for (let day = start; day < start + 9 * 366 * DAY_MS; day += DAY_MS) {
    if (!dayMatches(c, new Date(day))) continue;
    for (const h of hours) {
      for (const m of minutes) {
        const t = day + h * HOUR_MS + m * MINUTE_MS;
        if (t > after.getTime()) return t;
      }
    }
  }
  return undefined;
}

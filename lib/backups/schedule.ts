// EventBridge schedule expressions (`rate(...)`, `cron(...)`) and the time arithmetic of backup
// policies. Everything is UTC, as EventBridge and Trove's timestamps are; the clock is always a
// parameter so the scheduler can be tested minute by minute.

export const MINUTE_MS = 60_000;
export const HOUR_MS = 60 * MINUTE_MS;
export const DAY_MS = 24 * HOUR_MS;

export interface CronSchedule {
  kind: 'cron';
  minutes: ReadonlySet<number>;
  hours: ReadonlySet<number>;
  /** Days of the month, or null when the field is `?`. */
  days: ReadonlySet<number> | null;
  months: ReadonlySet<number>;
  /** JavaScript weekdays (0 = Sunday), or null when the field is `?`. */
  weekdays: ReadonlySet<number> | null;
  years: ReadonlySet<number>;
}
export type Schedule = { kind: 'rate'; intervalMs: number } | CronSchedule;

interface Field {
  label: string;
  min: number;
  max: number;
  names?: readonly string[];
  question?: boolean;
}
const MONTHS = ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'];
// EventBridge numbers weekdays 1-7 from Sunday, unlike Unix cron's 0-6.
const WEEKDAYS = ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'];
const FIELDS: readonly Field[] = [
  { label: 'minutes', min: 0, max: 59 },
  { label: 'hours', min: 0, max: 23 },
  { label: 'day-of-month', min: 1, max: 31, question: true },
  { label: 'month', min: 1, max: 12, names: MONTHS },
  { label: 'day-of-week', min: 1, max: 7, names: WEEKDAYS, question: true },
  { label: 'year', min: 1970, max: 2199 },
];
const UNITS: Record<string, number> = { minute: MINUTE_MS, hour: HOUR_MS, day: DAY_MS };

/** Parses an EventBridge schedule expression; throws an Error whose message is fit for a 400. */
export function compileSchedule(expression: string): Schedule {
  const rate = /^rate\((\d+) (minute|hour|day)(s?)\)$/.exec(expression);
  if (rate) {
    const value = Number(rate[1]);
    if (!Number.isSafeInteger(value) || value < 1)
      throw new Error(`${expression}: the value must be 1 or more`);
    // EventBridge insists on `rate(1 hour)` but `rate(2 hours)`.
    if ((value === 1) !== (rate[3] === '')) {
      throw new Error(`${expression}: use the singular unit for 1 and the plural for more`);
    }
    return { kind: 'rate', intervalMs: value * UNITS[rate[2]!]! };
  }
  const cron = /^cron\((.*)\)$/.exec(expression);
  if (!cron) throw new Error(`'${expression}' is neither rate(value unit) nor cron(fields)`);
  const parts = cron[1]!.trim().split(/ +/);
  if (parts.length !== 6) {
    throw new Error(`${expression}: cron needs 6 fields (minutes hours day-of-month month day-of-week year)`);
  }
  const [minutes, hours, days, months, weekdays, years] = FIELDS.map((f, i) => parseField(parts[i]!, f));
  if ((days === null) === (weekdays === null)) {
    throw new Error(`${expression}: exactly one of day-of-month and day-of-week must be '?'`);
  }
  const schedule: CronSchedule = {
    kind: 'cron',
    minutes: minutes!,
    hours: hours!,
    days: days ?? null,
    months: months!,
    weekdays: weekdays ? new Set([...weekdays].map((d) => d - 1)) : null,
    years: years!,
  };
  if (!everFires(schedule)) throw new Error(`${expression} never matches a date`);
  return schedule;
}

function parseField(text: string, f: Field): Set<number> | null {
  if (text === '?') {
    if (f.question) return null;
    throw new Error(`'?' is only allowed in day-of-month or day-of-week, not in ${f.label}`);
  }
  const values = new Set<number>();
  for (const item of text.split(',')) {
    const m = /^(?:(\*)|(\w+)(?:-(\w+))?)(?:\/(\d+))?$/.exec(item);
    if (!m)
      throw new Error(`${f.label}: '${item}' is not a value, range, list or step (L, W, # unsupported)`);
    const [, star, from, to, stepText] = m;
    const step = stepText === undefined ? 1 : Number(stepText);
    if (step < 1) throw new Error(`${f.label}: the step in '${item}' must be 1 or more`);
    const start = star ? f.min : value(from!, f);
    // `a/n` means from a to the end of the field, as in EventBridge.
    const end = star || (to === undefined && stepText !== undefined) ? f.max : value(to ?? from!, f);
    if (start > end) throw new Error(`${f.label}: the range '${item}' runs backwards`);
    for (let v = start; v <= end; v += step) values.add(v);
  }
  return values;
}

function value(text: string, f: Field): number {
  const named = f.names?.indexOf(text.toUpperCase()) ?? -1;
  const v = named >= 0 ? named + f.min : /^\d+$/.test(text) ? Number(text) : Number.NaN;
  if (!(v >= f.min && v <= f.max)) {
    const names = f.names ? ` or ${f.names[0]}-${f.names.at(-1)}` : '';
    throw new Error(`${f.label}: '${text}' is not in ${f.min}-${f.max}${names}`);
  }
  return v;
}

// A day-of-month schedule such as `30 2` (30 February) would otherwise be accepted and never run.
function everFires(c: CronSchedule): boolean {
  if (!c.days) return true; // every month has every weekday
  for (const y of c.years) {
    for (const m of c.months) {
      const length = new Date(Date.UTC(y, m, 0)).getUTCDate();
      for (const d of c.days) if (d <= length) return true;
    }
  }
  return false;
}

/**
 * The first matching minute at or after `from` (dir 1), or at or before it (dir -1); undefined
 * past the cron's year range. Whole years, months, days and hours that cannot match are skipped.
 */
function scan(c: CronSchedule, from: number, dir: 1 | -1): number | undefined {
  const fwd = dir === 1;
  let t = Math.floor(from / MINUTE_MS) * MINUTE_MS;
  for (;;) {
    const d = new Date(t);
    const [y, mo, day, h] = [d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate(), d.getUTCHours()];
    if (y < 1970 || y > 2199) return undefined;
    if (!c.years.has(y)) t = fwd ? Date.UTC(y + 1, 0) : Date.UTC(y, 0) - MINUTE_MS;
    else if (!c.months.has(mo + 1)) t = fwd ? Date.UTC(y, mo + 1) : Date.UTC(y, mo) - MINUTE_MS;
    else if (!(c.days ? c.days.has(day) : c.weekdays?.has(d.getUTCDay()))) {
      t = fwd ? Date.UTC(y, mo, day + 1) : Date.UTC(y, mo, day) - MINUTE_MS;
    } else if (!c.hours.has(h)) t = fwd ? Date.UTC(y, mo, day, h + 1) : Date.UTC(y, mo, day, h) - MINUTE_MS;
    else if (!c.minutes.has(d.getUTCMinutes())) t += dir * MINUTE_MS;
    else return t;
  }
}

function occurrenceAfter(s: Schedule, after: number): number | undefined {
  if (s.kind === 'rate') return after + s.intervalMs;
  return scan(s, Math.floor(after / MINUTE_MS) * MINUTE_MS + MINUTE_MS, 1);
}

/** The next run strictly after `after`: `after + interval` for rate, the next matching minute for cron. */
export function nextRun(schedule: string, after: Date): Date {
  const next = occurrenceAfter(compileSchedule(schedule), after.getTime());
  if (next === undefined) throw new RangeError(`${schedule} has no run after ${after.toISOString()}`);
  return new Date(next);
}

/** Reads an ISO timestamp as UTC: Trove's are naive ("2019-12-23T20:58:35") and mean UTC. */
export function parseUtc(timestamp: string): Date {
  const zoned = !timestamp.includes('T') || /(Z|[+-]\d\d:?\d\d)$/i.test(timestamp);
  return new Date(zoned ? timestamp : `${timestamp}Z`);
}

/**
 * The occurrence a policy should run for at `now`, or undefined when none is due. It is the
 * latest occurrence not after `now`, so a scheduler that was down for several windows runs once
 * and records this time as `last_run`, which also makes a second call at the same `now` a no-op.
 */
export function dueAt(
  policy: { schedule: string; enabled?: boolean },
  state: { last_run?: string },
  now: Date,
  createdAt: Date,
): Date | undefined {
  if (policy.enabled === false) return undefined;
  const anchor = state.last_run === undefined ? createdAt : parseUtc(state.last_run);
  if (Number.isNaN(anchor.getTime())) throw new RangeError(`invalid last run or creation time`);
  const s = compileSchedule(policy.schedule);
  const first = occurrenceAfter(s, anchor.getTime());
  if (first === undefined || first > now.getTime()) return undefined;
  if (s.kind === 'rate') {
    // Stay on the grid anchored at creation so the schedule does not drift by the tick delay.
    const windows = Math.floor((now.getTime() - anchor.getTime()) / s.intervalMs);
    return new Date(anchor.getTime() + windows * s.intervalMs);
  }
  return new Date(scan(s, now.getTime(), -1) ?? first);
}

export function isDue(
  policy: { schedule: string; enabled?: boolean },
  state: { last_run?: string },
  now: Date,
  createdAt: Date,
): boolean {
  return dueAt(policy, state, now, createdAt) !== undefined;
}

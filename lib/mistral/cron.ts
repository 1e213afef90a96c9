// Mistral's cron triggers take Unix cron patterns (croniter: `minute hour day-of-month month
// day-of-week`); Troveless's backup policies take EventBridge's `cron(...)`, which has a year
// field, numbers weekdays 1-7 from Sunday (Unix: 0-7, 0 and 7 both Sunday) and wants exactly one
// of the two day fields to be `?`. Weekdays are written out as names, so no numbering is shifted.

const WEEKDAYS = ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'];

/** Unix cron → EventBridge `cron(...)`; throws an Error whose message is fit for a 400. */
export function eventBridgeCron(pattern: string): string {
  const fields = pattern.trim().split(/\s+/);
  if (fields.length !== 5) {
    throw new Error(`Invalid cron pattern '${pattern}': it needs 5 fields (minute hour day month weekday)`);
  }
  const [minute, hour, day, month, weekday] = fields as [string, string, string, string, string];
  const anyDay = day === '*' || day === '?';
  const anyWeekday = weekday === '*' || weekday === '?';
  if (!anyDay && !anyWeekday) {
    // Unix cron fires when either matches; a backup policy's schedule has one day field.
    throw new Error(`Invalid cron pattern '${pattern}': give a day of the month or a weekday, not both`);
  }
  const days = anyWeekday ? (anyDay ? '*' : day) : '?';
  const weekdays = anyWeekday ? '?' : weekdayNames(weekday, pattern);
  return `cron(${minute} ${hour} ${days} ${month} ${weekdays} *)`;
}

function weekdayNames(field: string, pattern: string): string {
  const chosen = new Set<number>();
  for (const item of field.split(',')) {
    const m = /^(?:(\*)|(\w+)(?:-(\w+))?)(?:\/(\d+))?$/.exec(item);
    if (!m) throw new Error(`Invalid cron pattern '${pattern}': weekday '${item}'`);
    const [, star, from, to, stepText] = m;
    const step = stepText === undefined ? 1 : Number(stepText);
    const start = star ? 0 : weekday(from!, pattern);
    const end = star || (to === undefined && stepText !== undefined) ? 7 : weekday(to ?? from!, pattern);
    if (step < 1 || start > end) throw new Error(`Invalid cron pattern '${pattern}': weekday '${item}'`);
    for (let d = start; d <= end; d += step) chosen.add(d % 7);
  }
  return [...chosen]
    .sort((a, b) => a - b)
    .map((d) => WEEKDAYS[d])
    .join(',');
}

function weekday(text: string, pattern: string): number {
  const named = WEEKDAYS.indexOf(text.toUpperCase());
  const value = named >= 0 ? named : /^\d$/.test(text) ? Number(text) : -1;
  if (value < 0 || value > 7) throw new Error(`Invalid cron pattern '${pattern}': weekday '${text}'`);
  return value;
}

// Trove's HTTP rate limits (trove/common/limits.py), as pure rules: what limits a project has,
// which of them a request counts against, and the leaky bucket each one is. The store
// (store.ts) keeps one number per project and limit, so that every function instance shares it.

export type Unit = 'SECOND' | 'MINUTE' | 'HOUR' | 'DAY';
const UNIT_SECONDS: Record<Unit, number> = { SECOND: 1, MINUTE: 60, HOUR: 3600, DAY: 86400 };

/** Trove's Limit: `value` requests of `verb` to paths matching `regex` per `unit`. */
export interface RateLimit {
  verb: string;
  /** Human-readable URI, shown as Trove's `uri`. */
  uri: string;
  regex: string;
  value: number;
  unit: Unit;
}

/** Trove's http_{post,put,delete,get,mgmt_post}_rate, 200 per minute each, in Trove's order. */
export function troveDefaultLimits(rate = 200): RateLimit[] {
  return [
    { verb: 'POST', uri: '*', regex: '.*', value: rate, unit: 'MINUTE' },
    { verb: 'PUT', uri: '*', regex: '.*', value: rate, unit: 'MINUTE' },
    { verb: 'DELETE', uri: '*', regex: '.*', value: rate, unit: 'MINUTE' },
    { verb: 'GET', uri: '*', regex: '.*', value: rate, unit: 'MINUTE' },
    { verb: 'POST', uri: '*/mgmt', regex: '^/mgmt', value: rate, unit: 'MINUTE' },
  ];
}

/**
 * Trove's `Limiter.parse_limits`: `(VERB, uri, regex, value, UNIT);...`, the syntax of its
 * api-paste `limits` option. Throws, as Trove does at start, on anything else.
 */
export function parseLimits(text: string): RateLimit[] {
  const trimmed = text.trim();
  if (!trimmed) return [];
  return trimmed.split(';').map((raw) => {
    const group = raw.trim();
    if (!group.startsWith('(') || !group.endsWith(')'))
      throw new Error('Limit rules must be surrounded by parentheses');
    const args = group
      .slice(1, -1)
      .split(',')
      .map((a) => a.trim());
    if (args.length !== 5)
      throw new Error('Limit rules must contain the following arguments: verb, uri, regex, value, unit');
    const [verb = '', uri = '', regex = '', value = '', unit = ''] = args;
    if (!/^\d+$/.test(value) || Number(value) <= 0) throw new Error('Limit value must be > 0');
    if (!(unit.toUpperCase() in UNIT_SECONDS)) throw new Error('Invalid units specified');
    new RegExp(regex); // a bad regex fails here, at the first request's cold start, not later
    return { verb: verb.toUpperCase(), uri, regex, value: Number(value), unit: unit.toUpperCase() as Unit };
  });
}

/** A limit's key in the store: a changed limit starts with an empty bucket. */
export function limitKey(l: RateLimit): string {
  return `${l.verb} ${l.regex} ${l.value}/${l.unit}`;
}

/**
 * Whether a request counts against a limit. Trove matches the regex against the whole request
 * URL, so its `^/mgmt` never matched; here it is matched against the path after
 * `/v1.0/{project_id}`, which is what the rule says.
 */
export function applies(l: RateLimit, verb: string, path: string): boolean {
  return l.verb === verb && new RegExp(l.regex).test(path);
}

/**
 * The leaky bucket of Trove's Limit, held as the time its water drains out (`drainsAt`, ms): the
 * bucket holds one unit of time, and each request pours in unit/value of it.
 */
export interface Bucket {
  capacityMs: number;
  perRequestMs: number;
}

export function bucketOf(l: RateLimit): Bucket {
  const capacityMs = UNIT_SECONDS[l.unit] * 1000;
  return { capacityMs, perRequestMs: capacityMs / l.value };
}

/** What pouring one request into a bucket that drains at `drainsAt` gives at `now`. */
export function pour(
  b: Bucket,
  drainsAt: number | undefined,
  now: number,
): { ok: true; drainsAt: number } | { ok: false; delayMs: number } {
  const level = Math.max((drainsAt ?? now) - now, 0) + b.perRequestMs;
  if (level > b.capacityMs + 1e-6) return { ok: false, delayMs: level - b.capacityMs };
  return { ok: true, drainsAt: now + level };
}

/** Trove's message for a refused request under this limit. */
export function limitMessage(l: RateLimit): string {
  return `Only ${l.value} ${l.verb} request(s) can be made to ${l.uri} every ${l.unit.toLowerCase()}.`;
}

/** Trove's limit view: how many requests the bucket still takes now, and when the next may come. */
export function limitView(l: RateLimit, drainsAt: number | undefined, now: number) {
  const b = bucketOf(l);
  const water = Math.max((drainsAt ?? now) - now, 0);
  const remaining = Math.max(Math.floor(((b.capacityMs - water) / b.capacityMs) * l.value), 0);
  const wait = water + b.perRequestMs - b.capacityMs;
  return {
    nextAvailable: isoSeconds(new Date(now + Math.max(Math.ceil(wait), 0))),
    remaining,
    unit: l.unit,
    value: l.value,
    verb: l.verb,
    uri: l.uri,
    regex: l.regex,
  };
}

/** Trove's timeutils.isotime: seconds, with Z. */
function isoSeconds(d: Date): string {
  return `${d.toISOString().slice(0, 19)}Z`;
}

/**
 * The limits of a project: the deployment's (`TROVELESS_RATE_LIMITS`, Trove's `limits` syntax;
 * Trove's five defaults when unset), or those set for the project by id or name
 * (`TROVELESS_PROJECT_RATE_LIMITS`, a JSON object, Trove's `user:<tenant>` options).
 */
export function limitsFromEnvironment(env: NodeJS.ProcessEnv = process.env) {
  const all = env.TROVELESS_RATE_LIMITS?.trim()
    ? parseLimits(env.TROVELESS_RATE_LIMITS)
    : troveDefaultLimits();
  const byProject = new Map<string, RateLimit[]>();
  const raw = env.TROVELESS_PROJECT_RATE_LIMITS?.trim();
  if (raw) {
    const parsed: unknown = JSON.parse(raw);
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
      throw new Error('TROVELESS_PROJECT_RATE_LIMITS must be a JSON object of project to limits');
    for (const [project, text] of Object.entries(parsed)) {
      if (typeof text !== 'string')
        throw new Error(`TROVELESS_PROJECT_RATE_LIMITS: ${project} needs a string`);
      byProject.set(project, parseLimits(text));
    }
  }
  return (project: { id: string; name: string }): RateLimit[] =>
    byProject.get(project.id) ?? byProject.get(project.name) ?? all;
}

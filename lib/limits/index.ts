import { RateLimited } from '../errors.ts';
import type { Caller } from '../http/auth.ts';
import {
  applies,
  bucketOf,
  limitKey,
  limitMessage,
  limitsFromEnvironment,
  limitView,
  type RateLimit,
} from './rates.ts';
import { bucketsOf, heldRequests, takeRequest } from './store.ts';

// Trove's RateLimitingMiddleware: every request under a project counts against the limits of its
// verb, per project (Trove's key is the context's project_id), before it reaches its route.

let limitsOf: ReturnType<typeof limitsFromEnvironment> | undefined;
const projectLimits = (caller: Caller): RateLimit[] => {
  limitsOf ??= limitsFromEnvironment();
  return limitsOf({ id: caller.claims.project_id, name: caller.claims.project_name });
};

/** The path as the limits' regexes see it: what follows `/v1.0/{project_id}`. */
export function limitedPath(rawPath: string): string {
  const match = /\/v1\.0\/[^/]*(\/.*)?$/.exec(rawPath);
  return match?.[1] ?? '/';
}

/**
 * Counts the request against each limit it falls under; over any of them is Trove's 413 with
 * the shortest wait, and the request goes no further.
 */
export async function checkRateLimits(caller: Caller, verb: string, rawPath: string): Promise<void> {
  const path = limitedPath(rawPath);
  const matching = projectLimits(caller).filter((l) => applies(l, verb, path));
  const delays: { delayMs: number; limit: RateLimit }[] = [];
  for (const limit of matching) {
    const delayMs = await takeRequest(caller.claims.project_id, limit);
    if (delayMs !== undefined) delays.push({ delayMs, limit });
  }
  delays.sort((a, b) => a.delayMs - b.delayMs);
  const first = delays[0];
  if (first) throw new RateLimited(limitMessage(first.limit), Math.ceil(first.delayMs / 1000));
}

/** `GET /limits`' rate part: each of the project's limits, its remaining requests and next slot. */
export async function rateLimitViews(caller: Caller, now = Date.now()) {
  const project = caller.claims.project_id;
  const buckets = await bucketsOf(project);
  return projectLimits(caller).map((l) => {
    // What this function served without writing yet is water in the bucket too.
    const held = heldRequests(project, l);
    const drainsAt = buckets.get(limitKey(l));
    const water = held ? Math.max(drainsAt ?? now, now) + held * bucketOf(l).perRequestMs : drainsAt;
    return limitView(l, water, now);
  });
}

import { call, type Login } from './helpers.ts';

// Running several e2e scenarios at once (fault injection, the failover soak): a bound on how many
// are busy together, and room in the admin project's quota for all of them.

/** At most `limit` of the calls given to it run at once; the others wait their turn, in order. */
export type Limiter = <R>(work: () => Promise<R>) => Promise<R>;
export function limiter(limit: number): Limiter {
  let active = 0;
  const waiting: (() => void)[] = [];
  return async <R>(work: () => Promise<R>): Promise<R> => {
    while (active >= limit) await new Promise<void>((r) => waiting.push(r));
    active++;
    try {
      return await work();
    } finally {
      active--;
      waiting.shift()?.();
    }
  };
}

/** The admin project's limits while the runs need more than its default quota of instances. */
export async function raiseQuota(admin: Login, more: number): Promise<() => Promise<void>> {
  const path = `/v1.0/${admin.projectId}/mgmt/quotas/${admin.projectId}`;
  const shown = await call('GET', path, admin.token);
  const usage = shown.json?.quotas as { resource: string; in_use: number; limit: number }[];
  const before: Record<string, number> = {};
  const raised: Record<string, number> = {};
  for (const { resource, in_use, limit } of usage) {
    if (!['instances', 'volumes', 'backups'].includes(resource) || limit < 0) continue;
    before[resource] = limit;
    raised[resource] = Math.max(limit, in_use + more);
  }
  const res = await call('PUT', path, admin.token, { quotas: raised });
  if (res.status !== 200) throw new Error(`raise quota: ${res.status} ${res.text}`);
  return async () => {
    await call('PUT', path, admin.token, { quotas: before });
  };
}

/**
 * A describe's options when its suite may run beside the file's other suites: each builds its own
 * instances and spends most of its time waiting on them, so the file takes as long as its longest
 * suite instead of their sum. A suite's options pass to its tests, so tests that build on the one
 * before sit inside `describe(..., IN_ORDER, ...)`.
 */
export const SIDE_BY_SIDE = { concurrent: true } as const;
export const IN_ORDER = { concurrent: false } as const;

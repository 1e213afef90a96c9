import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { waitUntil } from '../../local/wait.ts';
import { call, cloud, type Login, login } from './helpers.ts';

// Trove's HTTP rate limits, enforced. The suite's cloud gives every project limits no test
// reaches, and the project `throttled` (global-setup.ts) Trove's own rules with a small GET
// rate, 12 per minute: a slot every 5 s, so that the test waits for one and not for a minute.

const run = promisify(execFile);
let throttled: Login;

type RateView = {
  verb: string;
  regex: string;
  value: number;
  remaining: number;
  unit: string;
  nextAvailable: string;
};

beforeAll(async () => {
  await run(
    process.execPath,
    ['--import', 'tsx', 'local/identity-user.ts', 'throttled', 'Thr0ttled-pass', 'throttled', 'member'],
    { cwd: resolve(import.meta.dirname, '../..'), env: { ...process.env, ...cloud().env } },
  );
  throttled = await login('throttled', 'Thr0ttled-pass');
});

const limits = () => call('GET', `/v1.0/${throttled.projectId}/limits`, throttled.token);

describe('HTTP rate limits', () => {
  it('lists the absolute limits and every rate limit, as Trove', async () => {
    const res = await limits();
    expect(res.status).toBe(200);
    const [absolute, ...rates] = (res.json as { limits: Record<string, unknown>[] }).limits;
    expect(absolute).toEqual({
      verb: 'ABSOLUTE',
      max_instances: 10,
      max_backups: 50,
      max_volumes: 40,
      max_ram: -1,
    });
    expect((rates as RateView[]).map((r) => [r.verb, r.regex, r.value, r.unit])).toEqual([
      ['POST', '.*', 200, 'MINUTE'],
      ['PUT', '.*', 200, 'MINUTE'],
      ['DELETE', '.*', 200, 'MINUTE'],
      ['GET', '.*', 12, 'MINUTE'],
      ['POST', '^/mgmt', 200, 'MINUTE'],
    ]);
    const get = (rates as RateView[]).find((r) => r.verb === 'GET');
    // This request counted: fewer than 12 are left.
    expect(get?.remaining).toBeLessThan(12);
    expect(get?.nextAvailable).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  });

  it('refuses a GET over the limit with Trove’s 413 overLimit and Retry-After, then serves it once a slot drains', async () => {
    let refused: Awaited<ReturnType<typeof limits>> | undefined;
    for (let i = 0; i < 14 && !refused; i++) {
      const res = await limits();
      if (res.status !== 200) refused = res;
    }
    expect(refused?.status).toBe(413);
    const retryAfter = refused?.headers.get('retry-after');
    expect(Number(retryAfter)).toBeGreaterThanOrEqual(1);
    expect(Number(retryAfter)).toBeLessThanOrEqual(5);
    expect(refused?.json).toEqual({
      overLimit: {
        code: 413,
        message: 'This request was rate-limited.',
        details: 'Only 12 GET request(s) can be made to * every minute.',
        retryAfter,
      },
    });
    // The buckets are this project’s own: another project is served meanwhile.
    const demo = await login('demo', 'demo');
    expect((await call('GET', `/v1.0/${demo.projectId}/limits`, demo.token)).status).toBe(200);
    // A refused request takes no slot: polling waits for the next one, and is then served.
    const started = Date.now();
    const served = await waitUntil(
      'a GET once a slot drains',
      async () => {
        const res = await limits();
        return res.status === 200 ? res : undefined;
      },
      { timeoutMs: 15_000, intervalMs: 250 },
    );
    expect(served.status).toBe(200);
    expect(Date.now() - started).toBeLessThan(Number(retryAfter) * 1000 + 3000);
  });
});

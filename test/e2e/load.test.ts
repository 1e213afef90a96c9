import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitUntil } from '../../local/wait.ts';
import { call, type Login, login } from './helpers.ts';
import {
  createInstance,
  healthy,
  type InstanceView,
  showInstance,
  waitForInstance,
} from './instance-helpers.ts';

// A loaded machine makes a create slower, never failed: every workflow step retries Lambda's
// own transient errors (a function timing out while the CPU is saturated), and a retried send
// to the guest is the same operation, which the guest runs once.
const CREATES = 8;
const ENGINES = ['mysql', 'postgresql', 'redis'] as const;

describe(`${CREATES} creates at once`, () => {
  let admin: Login;
  const made: string[] = [];
  beforeAll(async () => {
    admin = await login('admin', 'admin');
  });
  afterAll(async () => {
    for (const id of made) await call('DELETE', `/v1.0/${admin.projectId}/instances/${id}`, admin.token);
    for (const id of made) await waitForInstance(admin, id, 'gone', 300_000).catch(() => undefined);
  }, 600_000);

  it('all become ACTIVE and HEALTHY', { timeout: 900_000 }, async () => {
    const created = await Promise.all(
      Array.from({ length: CREATES }, (_, i) =>
        createInstance(admin, {
          name: `load-${i}`,
          flavorRef: '7',
          volume: { size: 1 },
          datastore: { type: ENGINES[i % ENGINES.length] },
        }),
      ),
    );
    made.push(...created.map((c) => c.id));
    // Settled: every one ACTIVE and HEALTHY, or any one in ERROR (whose fault the failure shows).
    const views = await waitUntil(
      `${CREATES} instances to settle`,
      async () => {
        const all = await Promise.all(
          created.map(async (c) => (await showInstance(admin, c.id)).json?.instance as InstanceView),
        );
        const settled = all.every((v) => v && (healthy(v) || v.status === 'ERROR'));
        return settled || all.some((v) => v?.status === 'ERROR') ? all : undefined;
      },
      { timeoutMs: 600_000, intervalMs: 1000 },
    );
    expect(views.map((v) => `${v.status} ${v.fault?.message ?? ''}`.trim())).toEqual(
      Array(CREATES).fill('ACTIVE'),
    );
    expect(views.every(healthy)).toBe(true);
  });
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, type Login, login } from './helpers.ts';
import { createInstance, healthy, type InstanceView, waitForInstance } from './instance-helpers.ts';

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
    // waitForInstance throws as soon as one ends in ERROR, with its fault.
    const ready = await Promise.all(created.map((c) => waitForInstance(admin, c.id, healthy, 600_000)));
    expect(ready.map((v) => (v as InstanceView).status)).toEqual(Array(CREATES).fill('ACTIVE'));
  });
});

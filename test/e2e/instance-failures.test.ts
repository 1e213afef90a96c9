import { randomBytes, randomUUID } from 'node:crypto';
import { totalmem } from 'node:os';
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seal } from '../../lib/guest/protocol.ts';
import { lambdaInvoker } from '../../local/lambda.ts';
import { waitUntil } from '../../local/wait.ts';
import { call, cloud, type Login, login } from './helpers.ts';
import { endpointFor, redisClient } from './instance-access.ts';
import {
  createInstance,
  healthy,
  type InstanceView,
  showInstance,
  waitForInstance,
} from './instance-helpers.ts';
import { serversOf } from './leftovers.ts';
import { processesMentioning } from './processes.ts';

// Failures end truthfully: an engine that cannot start is ERROR with a fault, a silent guest is
// ERROR in operating status, duplicated deliveries build one server, forged messages change nothing.
const sqs = () =>
  new SQSClient({
    endpoint: cloud().endpoints.sqs,
    region: 'us-east-1',
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
  });

async function deleteAndWait(who: Login, id: string) {
  const res = await call('DELETE', `/v1.0/${who.projectId}/instances/${id}`, who.token);
  expect(res.status).toBe(202);
  await waitForInstance(who, id, 'gone');
}

describe('an engine that cannot start', () => {
  let admin: Login;
  const flavorId = `e2e-huge-${randomBytes(3).toString('hex')}`;
  beforeAll(async () => {
    admin = await login('admin', 'admin');
    // Twice the machine's memory: MariaDB cannot map a buffer pool of that size.
    const ram = Math.ceil((totalmem() / 1024 / 1024) * 4);
    const made = await call('POST', `/v1.0/${admin.projectId}/mgmt/flavors`, admin.token, {
      flavor: { id: flavorId, name: flavorId, ram, vcpus: 1, disk: 1 },
    });
    expect(made.status).toBe(202);
  });
  afterAll(async () => {
    await call('DELETE', `/v1.0/${admin.projectId}/mgmt/flavors/${flavorId}`, admin.token);
  });

  it('ends in ERROR with a fault that says why, and can be deleted', async () => {
    const created = await createInstance(admin, {
      name: 'e2e-cannot-start',
      flavorRef: flavorId,
      volume: { size: 1 },
      datastore: { type: 'mysql' },
    });
    const failed = await waitForInstance(admin, created.id, (i) => i.status === 'ERROR');
    expect(failed?.fault?.message).toMatch(/buffer pool|memory|allocate/i);
    await deleteAndWait(admin, created.id);
  });
});

describe('a running redis instance', () => {
  let admin: Login;
  let ready: InstanceView;
  beforeAll(async () => {
    admin = await login('admin', 'admin');
    const created = await createInstance(admin, {
      name: 'e2e-failures',
      flavorRef: '7',
      volume: { size: 1 },
      datastore: { type: 'redis' },
    });
    ready = (await waitForInstance(admin, created.id, healthy)) as InstanceView;
  });
  afterAll(async () => {
    if (ready) await deleteAndWait(admin, ready.id);
  });

  it('was built on exactly one server although every message arrived twice', async () => {
    const servers = await serversOf(ready.id);
    expect(servers).toHaveLength(1);
    expect(servers[0]?.id).toBe(ready.server_id);
    expect(processesMentioning(`${ready.server_id}/agent.json`)).toHaveLength(1);
  });

  it('is invisible to another project, which can neither read nor delete it', async () => {
    const demo = await login('demo', 'demo');
    const own = await call('GET', `/v1.0/${demo.projectId}/instances/${ready.id}`, demo.token);
    expect(own.status).toBe(404);
    const foreign = await call('GET', `/v1.0/${admin.projectId}/instances/${ready.id}`, demo.token);
    expect(foreign.status).toBe(403);
    const removed = await call('DELETE', `/v1.0/${demo.projectId}/instances/${ready.id}`, demo.token);
    expect(removed.status).toBe(404);
    expect(((await showInstance(admin, ready.id)).json as { instance: InstanceView }).instance.status).toBe(
      'ACTIVE',
    );
  });

  it('ignores forged heartbeats and forged orders', async () => {
    const forgedKey = randomBytes(32);
    const now = Date.now() / 1000;
    const conductorUrl = `${cloud().endpoints.sqs}/123456789012/troveless-local-conductor`;
    const heartbeat = {
      method: 'heartbeat',
      instance_id: ready.id,
      sent: now + 3600,
      payload: { service_status: 'shutdown' },
    };
    await sqs().send(
      new SendMessageCommand({ QueueUrl: conductorUrl, MessageBody: seal(forgedKey, ready.id, heartbeat) }),
    );
    await sqs().send(
      new SendMessageCommand({ QueueUrl: conductorUrl, MessageBody: JSON.stringify(heartbeat) }),
    );
    const guestUrl = `${cloud().endpoints.sqs}/123456789012/troveless-local-guest-${ready.id}`;
    const order = { id: randomUUID(), instance_id: ready.id, method: 'stop_db', args: {}, sent: now };
    await sqs().send(
      new SendMessageCommand({ QueueUrl: guestUrl, MessageBody: seal(forgedKey, ready.id, order) }),
    );

    // Wait for genuine heartbeats after the forgeries: had one been applied, its future `sent`
    // would block them and the status would read SHUTDOWN.
    const before = (await showInstance(admin, ready.id)).json?.instance as InstanceView;
    const after = await waitUntil(
      'two more genuine heartbeats',
      async () => {
        const view = (await showInstance(admin, ready.id)).json?.instance as InstanceView;
        return Date.parse(`${view.service_status_updated}Z`) >=
          Date.parse(`${before.service_status_updated}Z`) + 3000
          ? view
          : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 500 },
    );
    expect(after).toMatchObject({ status: 'ACTIVE', operating_status: 'HEALTHY' });
    const redis = await redisClient(await endpointFor(admin, ready));
    expect(await redis.ping()).toBe('PONG');
    redis.disconnect();
  });

  it('shows operating status ERROR once its guest agent has been silent past the heartbeat expiry', async () => {
    const agents = processesMentioning(`${ready.server_id}/agent.json`);
    expect(agents).toHaveLength(1);
    process.kill(agents[0] as number, 'SIGKILL');
    const silent = await waitForInstance(admin, ready.id, (i) => i.operating_status === 'ERROR', 60_000);
    expect(silent?.status).toBe('ACTIVE');
  });

  it('shows SHUTDOWN once the scheduled server sync has seen its server stop', async () => {
    // The schedule runs every minute; the test invokes the same function rather than wait.
    const invoke = lambdaInvoker(cloud().endpoints.lambda);
    const outcome = (await invoke('troveless-local-syncServerStatus', {})) as { changed: number };
    expect(outcome.changed).toBeGreaterThanOrEqual(1);
    const view = (await showInstance(admin, ready.id)).json?.instance as InstanceView;
    expect(view).toMatchObject({ status: 'SHUTDOWN', operating_status: '' });
    expect(view.fault?.message).toEqual(expect.any(String));
  });
});

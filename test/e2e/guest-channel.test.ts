import { readFileSync } from 'node:fs';
import { SendTaskHeartbeatCommand, SFNClient } from '@aws-sdk/client-sfn';
import {
  ChangeMessageVisibilityCommand,
  DeleteMessageCommand,
  type Message,
  ReceiveMessageCommand,
  SendMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DOORBELL_HEADER, doorbellToken } from '../../lib/guest/doorbell-token.ts';
import { type GuestRequest, openEnvelope, seal } from '../../lib/guest/protocol.ts';
import { lambdaInvoker } from '../../local/lambda.ts';
import { waitUntil } from '../../local/wait.ts';
import { call, cloud, type Login, login } from './helpers.ts';
import {
  createInstance,
  healthy,
  type InstanceView,
  showInstance,
  waitForInstance,
} from './instance-helpers.ts';
import { agentLogOf, dynamo } from './leftovers.ts';
import { processesMentioning } from './processes.ts';

// A guest signs its replies with its own key, but that proves only who replies. Here guest A
// has learned instance B's task token (as a guest reading another's orders would) and answers
// B's waiting restart with it: the conductor drops the reply, and B's workflow waits on until B
// itself answers.
const sqs = () =>
  new SQSClient({
    endpoint: cloud().endpoints.sqs,
    region: 'us-east-1',
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
  });
const guestQueue = (id: string) => `${cloud().endpoints.sqs}/123456789012/troveless-local-guest-${id}`;

/** The guest agent of an instance: its pid and the key from its config file (the guest's own). */
function agentOf(instance: InstanceView): { pid: number; key: Buffer } {
  // The local compute host keeps each server under a directory named after the server id.
  const serverId = String(instance.server_id ?? '');
  expect(serverId).not.toBe('');
  for (const pid of processesMentioning(serverId)) {
    const args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
    // `main.mjs <config> [--await-launch <manager>]`: the config path follows the bundle.
    const bundle = args.findIndex((a) => a.endsWith('main.mjs'));
    if (bundle < 0) continue;
    const config = JSON.parse(readFileSync(args[bundle + 1] ?? '', 'utf8')) as { key: string };
    return { pid, key: Buffer.from(config.key, 'base64') };
  }
  throw new Error(`no guest agent runs for ${instance.id}`);
}

function sqsEvent(bodies: string[]) {
  return {
    Records: bodies.map((body, n) => ({
      messageId: `forged-${n}`,
      receiptHandle: `forged-${n}`,
      body,
      attributes: {},
      messageAttributes: {},
      md5OfBody: '',
      eventSource: 'aws:sqs',
      eventSourceARN: 'arn:aws:sqs:us-east-1:123456789012:troveless-local-conductor',
      awsRegion: 'us-east-1',
    })),
  };
}

/** The instance's doorbell as the control plane recorded it (lib/guest/doorbell.ts). */
async function doorbellOf(id: string): Promise<{ connection_id?: string; sent?: number } | undefined> {
  const out = await dynamo().send(
    new GetCommand({ TableName: 'troveless-local-operations', Key: { id: `doorbell#${id}` } }),
  );
  return out.Item;
}

/** Whether the doorbell API lets a connection with this token (or none) open; it is closed again. */
function tryDoorbell(token: string | undefined): Promise<'opened' | 'refused'> {
  const url = cloud().env.TROVELESS_DOORBELL_URL ?? '';
  const init = { headers: token ? { [DOORBELL_HEADER]: token } : {} } as unknown as string[];
  return new Promise((resolve) => {
    const socket = new WebSocket(url, init);
    socket.addEventListener('open', () => {
      resolve('opened');
      socket.close();
    });
    // A refused handshake fires 'error' (and no 'close').
    socket.addEventListener('error', () => resolve('refused'));
    socket.addEventListener('close', () => resolve('refused'));
  });
}

/** The agent's log lines (JSON) from `from` on. */
function agentLines(serverId: string, from = 0): Array<{ time: string; msg: string; operation?: string }> {
  return readFileSync(agentLogOf(serverId), 'utf8')
    .split('\n')
    .slice(from)
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line));
}

describe('the guest channel', () => {
  let admin: Login;
  let a: InstanceView;
  let b: InstanceView;
  let stoppedPid: number | undefined;

  beforeAll(async () => {
    admin = await login('admin', 'admin');
    const [ca, cb] = await Promise.all(
      ['e2e-channel-a', 'e2e-channel-b'].map((name) =>
        createInstance(admin, { name, flavorRef: '7', volume: { size: 1 }, datastore: { type: 'redis' } }),
      ),
    );
    [a, b] = (await Promise.all([ca, cb].map((c) => waitForInstance(admin, String(c?.id), healthy)))) as [
      InstanceView,
      InstanceView,
    ];
  });
  afterAll(async () => {
    if (stoppedPid) process.kill(stoppedPid, 'SIGCONT');
    for (const i of [a, b].filter(Boolean)) {
      await call('DELETE', `/v1.0/${admin.projectId}/instances/${i.id}`, admin.token);
      await waitForInstance(admin, i.id, 'gone');
    }
  });

  it('drops a reply carrying another instance’s task token; that workflow completes only from its own guest', async () => {
    const guestA = agentOf(a);
    const guestB = agentOf(b);
    // B's agent is paused, so B's order stays in its queue for the test to read. A receive it
    // had in flight would swallow the next message: a marker takes that place.
    process.kill(guestB.pid, 'SIGSTOP');
    stoppedPid = guestB.pid;
    const queue = guestQueue(b.id);
    await sqs().send(new SendMessageCommand({ QueueUrl: queue, MessageBody: 'marker' }));
    const drained = await sqs().send(new ReceiveMessageCommand({ QueueUrl: queue, MaxNumberOfMessages: 10 }));
    for (const m of drained.Messages ?? [])
      await sqs().send(new DeleteMessageCommand({ QueueUrl: queue, ReceiptHandle: m.ReceiptHandle }));

    const restarted = await call('POST', `/v1.0/${admin.projectId}/instances/${b.id}/action`, admin.token, {
      restart: {},
    });
    expect(restarted.status).toBe(202);
    const seen: Message[] = [];
    const order = await waitUntil(
      'the restart order in B’s queue',
      async () => {
        const out = await sqs().send(
          new ReceiveMessageCommand({ QueueUrl: queue, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }),
        );
        seen.push(...(out.Messages ?? []));
        for (const m of out.Messages ?? []) {
          const envelope = openEnvelope(m.Body ?? '');
          const request = envelope ? (JSON.parse(envelope.body) as GuestRequest) : undefined;
          if (request?.method === 'restart' && request.reply_token) return request;
        }
        return undefined;
      },
      { timeoutMs: 30_000, intervalMs: 200 },
    );
    const token = order.reply_token ?? '';

    // A signs, with its own genuine key, replies that carry B's token: under B's operation id,
    // and under an id of its own; a success and a failure.
    const reply = (operationId: string, ok: boolean) =>
      seal(guestA.key, a.id, {
        method: 'operation_result',
        instance_id: a.id,
        sent: Date.now() / 1000,
        payload: {
          operation_id: operationId,
          operation: 'restart',
          reply_token: token,
          ok,
          ...(ok ? { result: null } : { error: { type: 'Forged', message: 'A answers for B' } }),
        },
      });
    const invoke = lambdaInvoker(cloud().endpoints.lambda);
    const outcome = await invoke(
      'troveless-local-conductor',
      sqsEvent([reply(order.id, false), reply(order.id, true), reply('a-own-operation', false)]),
    );
    // Consumed (retrying cannot make them valid) and dropped.
    expect(outcome).toEqual({ batchItemFailures: [] });
    // The task still waits on that token: Step Functions accepts a heartbeat for it, which it
    // refuses (TaskDoesNotExist / TaskTimedOut) once a reply has completed or failed the task.
    const sfn = new SFNClient({
      endpoint: cloud().endpoints.stepfunctions,
      region: 'us-east-1',
      credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    });
    await expect(sfn.send(new SendTaskHeartbeatCommand({ taskToken: token }))).resolves.toBeDefined();
    const during = (await showInstance(admin, b.id)).json?.instance as InstanceView;
    expect(during.status).toBe('REBOOT');
    expect(during.fault).toBeUndefined();

    // The token was live all along: B's own agent, resumed, answers and the restart completes.
    for (const m of seen)
      await sqs().send(
        new ChangeMessageVisibilityCommand({
          QueueUrl: queue,
          ReceiptHandle: m.ReceiptHandle,
          VisibilityTimeout: 0,
        }),
      );
    process.kill(guestB.pid, 'SIGCONT');
    stoppedPid = undefined;
    const done = await waitForInstance(admin, b.id, (i) => i.status === 'ACTIVE');
    expect(done?.fault).toBeUndefined();
  });
  it('opens a doorbell only to its own guest: another instance’s key, no token, a stale or an older token are refused', async () => {
    const guestA = agentOf(a);
    const guestB = agentOf(b);
    const before = await waitUntil('B’s doorbell recorded', () => doorbellOf(b.id), { timeoutMs: 30_000 });
    expect(before.connection_id).toEqual(expect.any(String));
    const now = Date.now() / 1000;
    const attempts = {
      // A, with its own genuine key, claims to be B: it would take B's rings.
      'sealed with A’s key, naming B': doorbellToken(guestA.key, b.id, now),
      'without a token': undefined,
      'B’s own key, ten minutes old': doorbellToken(guestB.key, b.id, now - 600),
      // A token B sent before its current one (captured and replayed): B keeps its doorbell. (Most
      // often it is also past the 2 minutes a token is good for; $connect's own test,
      // test/integration/conductor-heartbeats.test.ts, holds the replay rule apart.)
      'B’s own key, older than B’s connection': doorbellToken(guestB.key, b.id, (before.sent ?? now) - 1),
    };
    const outcomes = Object.fromEntries(
      await Promise.all(
        Object.entries(attempts).map(async ([what, token]) => [what, await tryDoorbell(token)]),
      ),
    );
    expect(outcomes).toEqual(Object.fromEntries(Object.keys(attempts).map((what) => [what, 'refused'])));
    expect((await doorbellOf(b.id))?.connection_id).toBe(before.connection_id);
  });

  it('rings a guest at rest: an order sent while its agent rests is taken at once, not at its next rest poll', async () => {
    const serverId = String(a.server_id);
    // The agent rests once its busy window after the last order has passed (the suite's is 5 s).
    const resting = await waitUntil(
      'A’s agent at rest',
      async () => {
        const lines = agentLines(serverId);
        const last = lines.findLastIndex(
          (l) => l.msg === 'at rest: the queue is polled when the doorbell rings',
        );
        const lastOrder = lines.findLastIndex((l) => l.msg === 'running');
        return last > lastOrder ? { line: last, at: Date.parse(lines[last]?.time ?? '') } : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 250 },
    );
    const restarted = await call('POST', `/v1.0/${admin.projectId}/instances/${a.id}/action`, admin.token, {
      restart: {},
    });
    expect(restarted.status).toBe(202);
    const done = await waitForInstance(admin, a.id, (i) => i.status === 'ACTIVE');
    expect(done?.fault).toBeUndefined();
    const taken = agentLines(serverId, resting.line).find(
      (l) => l.msg === 'running' && l.operation === 'restart',
    );
    expect(taken).toBeDefined();
    // A rest poll would have come 300 s after the agent began to rest (TROVELESS_DOORBELL_REST_POLL_SECONDS).
    expect(Date.parse(taken?.time ?? '') - resting.at).toBeLessThan(300_000);
  });
});

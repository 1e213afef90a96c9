import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  DeleteCommand,
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { localCredentials, startDynamoDb } from '../../local/dynamodb.ts';
import { freePort } from '../../local/ports.ts';
import { ProcessGroup } from '../../local/processes.ts';

// The conductor's heartbeat path against DynamoDB Local: one table write per heartbeat once the
// guest is known, every heartbeat verified, a rotated key never trusted from the cache, nothing
// stale applied, and a heartbeat that changes nothing writes only its time.

const TABLE = 'troveless-hbtest-instances';
const OPERATIONS = 'troveless-hbtest-operations';
const PROJECT = 'p-heartbeats';
let dir: string;
let procs: ProcessGroup;
let docs: DynamoDBDocumentClient;
let lib: {
  ingest: typeof import('../../lib/conductor/apply.ts').ingest;
  engineFault: typeof import('../../lib/conductor/faults.ts').engineFault;
  GuestCache: typeof import('../../lib/conductor/guests.ts').GuestCache;
  findInstance: typeof import('../../lib/instances/repository.ts').findInstance;
  keys: typeof import('../../lib/guest/keys.ts');
  seal: typeof import('../../lib/guest/protocol.ts').seal;
  documents: typeof import('../../lib/dynamo.ts').documents;
  loadSamples: typeof import('../../lib/metrics/samples.ts').loadSamples;
  connectDoorbell: typeof import('../../lib/conductor/doorbell.ts').connectDoorbell;
  findDoorbell: typeof import('../../lib/guest/doorbell.ts').findDoorbell;
  doorbellToken: typeof import('../../lib/guest/doorbell-token.ts').doorbellToken;
};
/** Table calls the conductor made (its document client), by command name. */
const calls: string[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'troveless-hb-'));
  procs = new ProcessGroup(join(dir, 'pids.json'));
  const endpoint = await startDynamoDb(procs, {
    port: await freePort(),
    dataDir: join(dir, 'db'),
    logDir: dir,
  });
  // The conductor's clients read these when its modules load.
  Object.assign(process.env, {
    AWS_ENDPOINT_URL_DYNAMODB: endpoint,
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: localCredentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: localCredentials.secretAccessKey,
    TROVELESS_INSTANCES_TABLE: TABLE,
    TROVELESS_OPERATIONS_TABLE: OPERATIONS,
    TROVELESS_REPORT_INTERVAL: '60',
    TROVELESS_METRICS_SAMPLES_PER_WRITE: '5',
    TROVELESS_DOORBELL_URL: 'ws://127.0.0.1:9',
    TROVELESS_GUEST_KEK: 'a local key-encryption secret of 32+ chars',
    POWERTOOLS_LOG_LEVEL: 'ERROR',
  });
  const ddb = new DynamoDBClient({ endpoint, region: 'us-east-1', credentials: localCredentials });
  await ddb.send(
    new CreateTableCommand({
      TableName: TABLE,
      BillingMode: 'PAY_PER_REQUEST',
      AttributeDefinitions: [
        { AttributeName: 'project_id', AttributeType: 'S' },
        { AttributeName: 'id', AttributeType: 'S' },
      ],
      KeySchema: [
        { AttributeName: 'project_id', KeyType: 'HASH' },
        { AttributeName: 'id', KeyType: 'RANGE' },
      ],
      GlobalSecondaryIndexes: [
        {
          IndexName: 'by-id',
          KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }],
          Projection: { ProjectionType: 'KEYS_ONLY' },
        },
      ],
    }),
  );
  await ddb.send(
    new CreateTableCommand({
      TableName: OPERATIONS,
      BillingMode: 'PAY_PER_REQUEST',
      AttributeDefinitions: [{ AttributeName: 'id', AttributeType: 'S' }],
      KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }],
    }),
  );
  docs = DynamoDBDocumentClient.from(ddb);
  lib = {
    ingest: (await import('../../lib/conductor/apply.ts')).ingest,
    engineFault: (await import('../../lib/conductor/faults.ts')).engineFault,
    GuestCache: (await import('../../lib/conductor/guests.ts')).GuestCache,
    findInstance: (await import('../../lib/instances/repository.ts')).findInstance,
    keys: await import('../../lib/guest/keys.ts'),
    seal: (await import('../../lib/guest/protocol.ts')).seal,
    documents: (await import('../../lib/dynamo.ts')).documents,
    loadSamples: (await import('../../lib/metrics/samples.ts')).loadSamples,
    connectDoorbell: (await import('../../lib/conductor/doorbell.ts')).connectDoorbell,
    findDoorbell: (await import('../../lib/guest/doorbell.ts')).findDoorbell,
    doorbellToken: (await import('../../lib/guest/doorbell-token.ts')).doorbellToken,
  };
  lib.documents.middlewareStack.add(
    (next, context) => async (args) => {
      calls.push(String(context.commandName));
      return next(args);
    },
    { step: 'initialize', name: 'countTableCalls' },
  );
}, 90_000);

afterAll(async () => {
  await procs?.stopAll();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** A new instance with its own key, as the API stores it; a cache of the test's own. */
async function guest(id: string, status = 'healthy') {
  const key = lib.keys.newGuestKey();
  await docs.send(
    new PutCommand({
      TableName: TABLE,
      Item: {
        project_id: PROJECT,
        id,
        service_status: status,
        service_status_updated: '2026-01-01T00:00:00',
        updated: '2026-01-01T00:00:00',
        task_status: 'NONE',
        wrapped_key: await lib.keys.wrapKey(key),
      },
    }),
  );
  const cache = new lib.GuestCache(
    { load: lib.findInstance, unwrap: lib.keys.unwrapKey },
    { max: 100, ttlMs: 60_000, reloadAfterMs: 0 },
  );
  return { key, cache };
}

const beat = (key: Buffer, id: string, sent: number, status = 'healthy', volume?: object) =>
  lib.seal(key, id, {
    method: 'heartbeat',
    instance_id: id,
    sent,
    payload: { service_status: status, ...(volume ? { volume } : {}) },
  });

async function stored(id: string) {
  const out = await docs.send(new GetCommand({ TableName: TABLE, Key: { project_id: PROJECT, id } }));
  return out.Item ?? {};
}

const now = () => Date.now() / 1000;

describe('conductor heartbeats', () => {
  it('costs one table write per heartbeat once the guest is known; an unchanged one writes only its time', async () => {
    const { key, cache } = await guest('hb-one', 'building');
    const t = now();
    calls.length = 0;
    expect(await lib.ingest(beat(key, 'hb-one', t, 'healthy'), cache)).toBe('applied');
    // The first: the guest is looked up (index query, read), then one write.
    expect(calls).toEqual(['QueryCommand', 'GetItemCommand', 'UpdateItemCommand']);
    const first = await stored('hb-one');
    expect(first.last_seen_heartbeat).toBe(t);
    expect(first.service_status_updated).not.toBe('2026-01-01T00:00:00');

    // Pin the written times, so a time-only write shows as one that left them alone.
    await docs.send(
      new UpdateCommand({
        TableName: TABLE,
        Key: { project_id: PROJECT, id: 'hb-one' },
        UpdateExpression: 'SET service_status_updated = :old, updated = :old',
        ExpressionAttributeValues: { ':old': '2026-01-02T00:00:00' },
      }),
    );
    calls.length = 0;
    for (let i = 1; i <= 5; i++)
      expect(await lib.ingest(beat(key, 'hb-one', t + i, 'healthy'), cache)).toBe('applied');
    expect(calls).toEqual(Array(5).fill('UpdateItemCommand'));
    const after = await stored('hb-one');
    expect(after.last_seen_heartbeat).toBe(t + 5);
    expect(after.service_status).toBe('healthy');
    expect(after.service_status_updated).toBe('2026-01-02T00:00:00');
    expect(after.updated).toBe('2026-01-02T00:00:00');

    // A change of status is written whole, still in one write.
    calls.length = 0;
    expect(await lib.ingest(beat(key, 'hb-one', t + 6, 'shutdown'), cache)).toBe('applied');
    expect(calls).toEqual(['UpdateItemCommand']);
    const changed = await stored('hb-one');
    expect(changed.service_status).toBe('shutdown');
    expect(changed.service_status_updated).not.toBe('2026-01-02T00:00:00');
  });

  it('applies nothing stale: an older heartbeat never overwrites a newer status', async () => {
    const { key, cache } = await guest('hb-stale');
    const t = now();
    expect(await lib.ingest(beat(key, 'hb-stale', t, 'healthy'), cache)).toBe('applied');
    expect(await lib.ingest(beat(key, 'hb-stale', t + 2, 'crashed'), cache)).toBe('applied');
    // Late, and out of order: an older "healthy", then an older time-only candidate.
    expect(await lib.ingest(beat(key, 'hb-stale', t + 1, 'healthy'), cache)).toBe('stale');
    expect(await lib.ingest(beat(key, 'hb-stale', t + 1.5, 'crashed'), cache)).toBe('stale');
    const item = await stored('hb-stale');
    expect(item.service_status).toBe('crashed');
    expect(item.last_seen_heartbeat).toBe(t + 2);
  });

  it('puts a fault on an engine that crashed, takes it away once it runs, and never leaves one behind a later heartbeat', async () => {
    const { key, cache } = await guest('hb-crash');
    const t = now();
    expect(await lib.ingest(beat(key, 'hb-crash', t, 'crashed'), cache)).toBe('applied');
    const crashed = await stored('hb-crash');
    expect(crashed.fault?.details).toBe('Guest.EngineCrashed');
    expect(crashed.fault?.message).toMatch(/stopped without being asked to \(last status before: healthy/);
    expect(await lib.ingest(beat(key, 'hb-crash', t + 1, 'healthy'), cache)).toBe('applied');
    expect((await stored('hb-crash')).fault).toBeUndefined();

    // One batch holds both (the conductor was down while the engine crashed and came back; a
    // batch's records run side by side): the "healthy" written between the "crashed" write and
    // its fault. Played in that order: the fault must not go on an engine stored as healthy.
    const before = await stored('hb-crash');
    await lib.ingest(beat(key, 'hb-crash', t + 3, 'healthy'), cache);
    await lib.engineFault(before as Parameters<typeof lib.engineFault>[0], 'crashed');
    const after = await stored('hb-crash');
    expect(after.service_status).toBe('healthy');
    expect(after.fault).toBeUndefined();
  });

  it('writes the whole status when another writer changed it behind the cache', async () => {
    const { key, cache } = await guest('hb-other');
    const t = now();
    expect(await lib.ingest(beat(key, 'hb-other', t, 'healthy'), cache)).toBe('applied');
    // A restart sets "restarting"; the cache still believes "healthy".
    await docs.send(
      new UpdateCommand({
        TableName: TABLE,
        Key: { project_id: PROJECT, id: 'hb-other' },
        UpdateExpression: 'SET service_status = :s',
        ExpressionAttributeValues: { ':s': 'restarting' },
      }),
    );
    calls.length = 0;
    expect(await lib.ingest(beat(key, 'hb-other', t + 1, 'healthy'), cache)).toBe('applied');
    // The time-only write is refused (with the stored item), the whole one goes through.
    expect(calls).toEqual(['UpdateItemCommand', 'UpdateItemCommand']);
    expect((await stored('hb-other')).service_status).toBe('healthy');
  });

  it('keeps a pending RESTART_REQUIRED', async () => {
    const { key, cache } = await guest('hb-rr', 'restart required');
    expect(await lib.ingest(beat(key, 'hb-rr', now(), 'healthy'), cache)).toBe('stale');
    expect((await stored('hb-rr')).service_status).toBe('restart required');
  });

  it('never trusts a cached key past a rotation', async () => {
    const { key: oldKey, cache } = await guest('hb-rot');
    const t = now();
    expect(await lib.ingest(beat(oldKey, 'hb-rot', t, 'healthy'), cache)).toBe('applied');

    // The instance's key is rotated: the cache still holds the old one.
    const newKey = lib.keys.newGuestKey();
    await docs.send(
      new UpdateCommand({
        TableName: TABLE,
        Key: { project_id: PROJECT, id: 'hb-rot' },
        UpdateExpression: 'SET wrapped_key = :w',
        ExpressionAttributeValues: { ':w': await lib.keys.wrapKey(newKey) },
      }),
    );
    // Signed with the old key: it verifies against the cache, but the write sees the rotation.
    expect(await lib.ingest(beat(oldKey, 'hb-rot', t + 1, 'shutdown'), cache)).toBe('rejected');
    expect((await stored('hb-rot')).service_status).toBe('healthy');
    expect((await stored('hb-rot')).last_seen_heartbeat).toBe(t);
    // Signed with the new key: applied, and the old key is refused from now on without a write.
    expect(await lib.ingest(beat(newKey, 'hb-rot', t + 2, 'shutdown'), cache)).toBe('applied');
    expect((await stored('hb-rot')).service_status).toBe('shutdown');
    calls.length = 0;
    expect(await lib.ingest(beat(oldKey, 'hb-rot', t + 3, 'healthy'), cache)).toBe('rejected');
    expect(calls).not.toContain('UpdateItemCommand');
    expect((await stored('hb-rot')).service_status).toBe('shutdown');
  });

  it('picks up a key rotated before the cache ever saw the new one, when the guest signs with it', async () => {
    const { key: oldKey, cache } = await guest('hb-rot2');
    const t = now();
    expect(await lib.ingest(beat(oldKey, 'hb-rot2', t, 'healthy'), cache)).toBe('applied');
    const newKey = lib.keys.newGuestKey();
    await docs.send(
      new UpdateCommand({
        TableName: TABLE,
        Key: { project_id: PROJECT, id: 'hb-rot2' },
        UpdateExpression: 'SET wrapped_key = :w',
        ExpressionAttributeValues: { ':w': await lib.keys.wrapKey(newKey) },
      }),
    );
    expect(await lib.ingest(beat(newKey, 'hb-rot2', t + 1, 'shutdown'), cache)).toBe('applied');
    expect((await stored('hb-rot2')).service_status).toBe('shutdown');
    // A forgery (another key) is refused and changes nothing.
    expect(await lib.ingest(beat(lib.keys.newGuestKey(), 'hb-rot2', t + 2, 'healthy'), cache)).toBe(
      'rejected',
    );
    expect((await stored('hb-rot2')).service_status).toBe('shutdown');
  });

  it('refuses a heartbeat from the future (it would hold back every later one) and forgets deleted guests', async () => {
    const { key, cache } = await guest('hb-clock');
    expect(await lib.ingest(beat(key, 'hb-clock', now() + 3600, 'healthy'), cache)).toBe('rejected');
    expect((await stored('hb-clock')).last_seen_heartbeat).toBeUndefined();

    expect(await lib.ingest(beat(key, 'hb-clock', now(), 'healthy'), cache)).toBe('applied');
    expect(cache.size).toBe(1);
    // Deleted: the write finds no item (and creates none), and the cache lets the guest go.
    await docs.send(new DeleteCommand({ TableName: TABLE, Key: { project_id: PROJECT, id: 'hb-clock' } }));
    expect(await lib.ingest(beat(key, 'hb-clock', now(), 'healthy'), cache)).toBe('unknown-instance');
    expect(cache.size).toBe(0);
    expect(await stored('hb-clock')).toEqual({});
  });
});

describe('metrics samples', () => {
  it('keeps a bucket’s samples in one write beside the heartbeat’s own; a heartbeat without any writes once; late or old-style samples are kept too', async () => {
    const { key, cache } = await guest('hb-metrics');
    const t = now() - 900;
    const samples = [0, 60, 120, 180, 240].map((s) => ({
      t: t + s,
      service_status: 'healthy',
      connections: 2,
      queries: 1000 + s,
    }));
    const withSamples = (sent: number, batch: object[]) =>
      lib.seal(key, 'hb-metrics', {
        method: 'heartbeat',
        instance_id: 'hb-metrics',
        sent,
        payload: { service_status: 'healthy', samples: batch },
      });
    expect(await lib.ingest(beat(key, 'hb-metrics', t + 299), cache)).toBe('applied');
    calls.length = 0;
    expect(await lib.ingest(withSamples(t + 300, samples), cache)).toBe('applied');
    expect(calls).toEqual(['UpdateItemCommand', 'PutItemCommand']);
    expect(await lib.loadSamples(PROJECT, 'hb-metrics')).toEqual(samples);
    // The heartbeats between two batches write the instance item only.
    calls.length = 0;
    expect(await lib.ingest(beat(key, 'hb-metrics', t + 301), cache)).toBe('applied');
    expect(calls).toEqual(['UpdateItemCommand']);
    // A heartbeat delivered late applies nothing, but its samples are history: kept.
    const late = [{ t: t - 300, service_status: 'crashed', queries: 5 }];
    expect(await lib.ingest(withSamples(t + 300.5, late), cache)).toBe('stale');
    expect(await lib.loadSamples(PROJECT, 'hb-metrics')).toEqual([...late, ...samples]);
    expect((await stored('hb-metrics')).service_status).toBe('healthy');
    // An agent from before the batches sends its counters with every heartbeat: each is kept.
    const legacy = (sent: number, queries: number) =>
      lib.seal(key, 'hb-metrics', {
        method: 'heartbeat',
        instance_id: 'hb-metrics',
        sent,
        payload: { service_status: 'healthy', metrics: { connections: 1, queries } },
      });
    expect(await lib.ingest(legacy(t + 360, 2000), cache)).toBe('applied');
    expect(await lib.ingest(legacy(t + 420, 2600), cache)).toBe('applied');
    expect((await lib.loadSamples(PROJECT, 'hb-metrics')).slice(-2)).toEqual([
      { t: t + 360, service_status: 'healthy', connections: 1, queries: 2000 },
      { t: t + 420, service_status: 'healthy', connections: 1, queries: 2600 },
    ]);
    // Another project reads none of them.
    expect(await lib.loadSamples('p-other', 'hb-metrics')).toEqual([]);
  });
});

describe('the doorbell’s $connect', () => {
  it('opens only with a token of the instance’s own key, fresh, and newer than the one that holds it', async () => {
    const { key, cache } = await guest('hb-door');
    const other = await guest('hb-door-other');
    const t = now();
    const open = (token: string | undefined, connection: string, at = t) =>
      lib.connectDoorbell(token, connection, cache, at);
    expect(await open(lib.doorbellToken(key, 'hb-door', t), 'c1')).toBe('opened');
    expect(await lib.findDoorbell('hb-door')).toEqual({ connectionId: 'c1', sent: t });
    // The same token again, or an older one (captured, replayed): the guest keeps its doorbell.
    expect(await open(lib.doorbellToken(key, 'hb-door', t), 'c2')).toBe('refused');
    expect(await open(lib.doorbellToken(key, 'hb-door', t - 1), 'c3')).toBe('refused');
    // Another instance's key, naming this one; none at all; not a doorbell token; too old.
    expect(await open(lib.doorbellToken(other.key, 'hb-door', t + 1), 'c4')).toBe('refused');
    expect(await open(undefined, 'c5')).toBe('refused');
    expect(
      await open(
        lib.seal(key, 'hb-door', { method: 'heartbeat', instance_id: 'hb-door', sent: t + 1 }),
        'c6',
      ),
    ).toBe('refused');
    expect(await open(lib.doorbellToken(key, 'hb-door', t + 1), 'c7', t + 1000)).toBe('refused');
    expect(await open(lib.doorbellToken(key, 'no-such-instance', t + 1), 'c8')).toBe('refused');
    expect(await lib.findDoorbell('hb-door')).toEqual({ connectionId: 'c1', sent: t });
    // The guest's next connection, with a newer token, takes it.
    expect(await open(lib.doorbellToken(key, 'hb-door', t + 1), 'c9')).toBe('opened');
    expect(await lib.findDoorbell('hb-door')).toEqual({ connectionId: 'c9', sent: t + 1 });
  });
});

describe('a waiting task registered', () => {
  it('takes one write for an operation’s first token, the map made with it on an item read without one, hands a kept answer to a new token, and is refused for a gone instance', async () => {
    const tasks = await import('../../lib/conductor/tasks.ts');
    const id = 'i-register-first';
    await guest(id);
    let writes = 0;
    const count = (next: (args: unknown) => Promise<unknown>) => async (args: unknown) => {
      writes++;
      return next(args);
    };
    lib.documents.middlewareStack.add(count as never, { step: 'initialize', name: 'countWrites' });
    try {
      // No map on the item yet: it is made with the entry, in one write when the caller read the
      // item without one (a create's prepare), else after the write into a map fails. Then a
      // second operation beside it.
      expect((await tasks.registerWaitingTask(PROJECT, id, 'op-a', 'token-a', 'prepare', false))?.token).toBe(
        'token-a',
      );
      expect(writes).toBe(1);
      // Without the hint, on an item that has no map: the write into a map fails first.
      await guest('i-register-unhinted');
      writes = 0;
      expect(
        (await tasks.registerWaitingTask(PROJECT, 'i-register-unhinted', 'op-a', 'token-u', 'prepare'))
          ?.token,
      ).toBe('token-u');
      expect(writes).toBe(2);
      writes = 0;
      expect((await tasks.registerWaitingTask(PROJECT, id, 'op-b', 'token-b', 'restart'))?.token).toBe(
        'token-b',
      );
      expect(writes).toBe(1);
    } finally {
      lib.documents.middlewareStack.remove('countWrites');
    }
    expect(Object.keys((await stored(id)).waiting_tasks ?? {}).sort()).toEqual(['op-a', 'op-b']);
    // An answer kept for op-a while no token lived: a retried step's new token gets it handed over.
    await tasks.keepAnswer(PROJECT, id, 'op-a', { ok: true, result: { done: 1 } });
    const again = await tasks.registerWaitingTask(PROJECT, id, 'op-a', 'token-a2', 'prepare');
    expect(again).toMatchObject({ token: 'token-a2', answer: { ok: true, result: { done: 1 } } });
    expect(
      await tasks.registerWaitingTask(PROJECT, 'i-no-such-instance', 'op-a', 't', 'prepare'),
    ).toBeUndefined();
  });
});

describe('a waiting task registered again', () => {
  it('survives the earlier token forgetting its entry between the registration’s writes', async () => {
    const tasks = await import('../../lib/conductor/tasks.ts');
    const id = 'i-register-race';
    await guest(id);
    await tasks.registerWaitingTask(PROJECT, id, 'op-1', 'old-token', 'prepare');
    // The order sent again (a restart's resume): while its registration runs, the old token's
    // answer forgets the entry, right after the write that kept it.
    let raced = false;
    const race = (next: (args: unknown) => Promise<unknown>) => async (args: unknown) => {
      const out = await next(args);
      const input = (args as { input?: { UpdateExpression?: string } }).input;
      if (!raced && input?.UpdateExpression?.startsWith('SET waiting_tasks.#op = if_not_exists')) {
        raced = true;
        await tasks.forgetWaitingTask(PROJECT, id, 'op-1', 'old-token');
      }
      return out;
    };
    lib.documents.middlewareStack.add(race as never, { step: 'initialize', name: 'forgetMidway' });
    try {
      const entry = await tasks.registerWaitingTask(PROJECT, id, 'op-1', 'new-token', 'prepare');
      expect(raced).toBe(true);
      expect(entry?.token).toBe('new-token');
    } finally {
      lib.documents.middlewareStack.remove('forgetMidway');
    }
  });
});

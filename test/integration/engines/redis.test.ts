import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import type { ProcessEngine } from '../../../agent/engines/base.ts';
import { createEngineManager } from '../../../agent/engines/index.ts';
import type { EngineLayout, PrepareOptions } from '../../../agent/engines/manager.ts';
import { RedisManager } from '../../../agent/engines/redis.ts';
import { closeServer, occupy, stopAndRemove, tempLayout } from './helpers.ts';
import { describeLifecycle } from './lifecycle.ts';

// Trove manages no databases or users for redis: they are accepted and ignored. Redis always has
// a password: here root's, given at prepare (root_on_create).
const PASSWORD = 'lifecycle-Pass-1';
const options: PrepareOptions = {
  memoryMb: 512,
  databases: [{ name: 'ignored' }],
  users: [{ name: 'ignored', password: 'ignored' }],
  rootPassword: PASSWORD,
};

async function session<T>(
  layout: EngineLayout,
  work: (client: Redis) => Promise<T>,
  /** '' connects without a password. */
  password = PASSWORD,
): Promise<T> {
  const client = new Redis({
    host: '127.0.0.1',
    port: layout.port,
    password: password || undefined,
    lazyConnect: true,
    connectTimeout: 5_000,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  // ioredis 6 opens with HELLO; when that fails (NOAUTH) the error only comes as an event.
  let refused: Error | undefined;
  client.on('error', (err: Error) => {
    refused = err;
  });
  await client.connect().catch((err: unknown) => {
    client.disconnect();
    throw refused ?? err;
  });
  try {
    return await work(client);
  } finally {
    client.disconnect();
  }
}

describeLifecycle({
  name: 'redis',
  kind: 'redis',
  make: (layout) => new RedisManager(layout),
  options,
  write: (layout, key, value) => session(layout, (c) => c.set(key, value).then(() => undefined)),
  read: (layout, key) => session(layout, (c) => c.get(key).then((v) => v ?? undefined)),
  extra: (current) =>
    it('applies a root password as requirepass, at once and for later starts', async () => {
      const { manager, layout } = current();
      await manager.prepare({ ...options, rootPassword: 'r00t "pw"' });
      await expect(session(layout, (c) => c.get('k1'), '')).rejects.toThrow(/NOAUTH/);
      await expect(session(layout, (c) => c.get('k1'))).rejects.toThrow(/WRONGPASS/);
      expect(await session(layout, (c) => c.get('k1'), 'r00t "pw"')).toBe('v1');
      await manager.restart();
      expect(await manager.status()).toBe('healthy');
      expect(await session(layout, (c) => c.get('k1'), 'r00t "pw"')).toBe('v1');
      await manager.enableRoot(PASSWORD); // back to the password the later tests use
    }),
});

describe('redis start failures', () => {
  let layout: EngineLayout | undefined;
  let manager: ProcessEngine | undefined;
  afterAll(() => stopAndRemove(manager, layout));

  it('rejects a memory size that is not one', async () => {
    layout = await tempLayout('redis-fail');
    manager = new RedisManager(layout);
    await expect(manager.prepare({ ...options, memoryMb: -512 })).rejects.toThrow(/memoryMb/);
  });

  it('says the port is in use when it is', async () => {
    const server = await occupy(layout!.port);
    try {
      const err = await manager!.prepare(options).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'EADDRINUSE', message: expect.stringMatching(/already in use/) });
      expect(await manager!.status()).toBe('shutdown');
    } finally {
      await closeServer(server);
    }
  });

  it('recovers on the same instance once the cause is gone', async () => {
    await manager!.prepare(options);
    expect(await manager!.status()).toBe('healthy');
  });
});

describe('createEngineManager', () => {
  const layout = { baseDir: '/nonexistent', port: 1, bindAddress: '127.0.0.1' };

  it('maps Trove datastore managers to engines', async () => {
    expect((await createEngineManager('mysql', layout)).defaultPort).toBe(3306);
    expect((await createEngineManager('mariadb', layout)).defaultPort).toBe(3306);
    expect((await createEngineManager('postgresql', layout)).defaultPort).toBe(5432);
    expect((await createEngineManager('redis', layout)).defaultPort).toBe(6379);
  });

  it('names the unknown manager', async () => {
    await expect(createEngineManager('mongodb' as 'redis', layout)).rejects.toThrow(
      /unknown datastore manager "mongodb"/,
    );
  });
});

import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EngineLayout, EngineManager } from '../../../agent/engines/manager.ts';
import { RedisManager } from '../../../agent/engines/redis.ts';
import { stopAndRemove, tempLayout } from './helpers.ts';

// Trove's root on redis is the default user's password (requirepass); databases and users are
// Trove's 501. Redis is never without a password: before root is enabled only the agent knows it.

async function connect(layout: EngineLayout, password?: string): Promise<Redis> {
  const client = new Redis({
    host: '127.0.0.1',
    port: layout.port,
    password,
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
  return client;
}

async function get(layout: EngineLayout, key: string, password?: string): Promise<string | null> {
  const client = await connect(layout, password);
  try {
    return await client.get(key);
  } finally {
    client.disconnect();
  }
}

describe('redis root', () => {
  let layout: EngineLayout;
  let manager: RedisManager;

  beforeAll(async () => {
    layout = await tempLayout('redis-root');
    manager = new RedisManager(layout);
    await manager.prepare({ memoryMb: 128, databases: [], users: [] });
    // The agent's own password (root only may read its file), to write the test's data.
    const client = await connect(layout, await readFile(join(layout.baseDir, 'admin-password'), 'utf8'));
    await client.set('k', 'v');
    client.disconnect();
  });

  it('refuses a client without a password from the first start', async () => {
    await expect(get(layout, 'k')).rejects.toThrow(/NOAUTH/);
    expect((await stat(join(layout.baseDir, 'admin-password'))).mode & 0o077).toBe(0);
  });
  afterAll(() => stopAndRemove(manager, layout));

  it('enables root: AUTH with the password works, unauthenticated commands are refused', async () => {
    const open = await connect(layout, await readFile(join(layout.baseDir, 'admin-password'), 'utf8'));
    try {
      await manager.enableRoot('r00t "pw" \\ x');
      // A session opened with the old password would stay authenticated in Redis: it was ended.
      await expect(open.get('k')).rejects.toThrow(/Connection is closed/);
    } finally {
      open.disconnect();
    }
    await expect(get(layout, 'k')).rejects.toThrow(/NOAUTH/);
    await expect(get(layout, 'k', 'wrong')).rejects.toThrow(/WRONGPASS/);
    expect(await get(layout, 'k', 'r00t "pw" \\ x')).toBe('v');
    expect(await manager.status()).toBe('healthy');
    // Persisted in redis.conf, which only redis may read.
    const conf = join(layout.baseDir, 'conf', 'redis.conf');
    expect(await readFile(conf, 'utf8')).toContain('requirepass');
    expect((await stat(conf)).mode & 0o077).toBe(0);
  });

  it('keeps the password over a restart, and the agent can still stop and start', async () => {
    await manager.restart();
    expect(await manager.status()).toBe('healthy');
    await expect(get(layout, 'k')).rejects.toThrow(/NOAUTH/);
    expect(await get(layout, 'k', 'r00t "pw" \\ x')).toBe('v');
    await manager.stop();
    expect(await manager.status()).toBe('shutdown');
    await manager.start();
    expect(await manager.status()).toBe('healthy');
  });

  it('changes the password when enabled again', async () => {
    await manager.enableRoot('second');
    await expect(get(layout, 'k', 'r00t "pw" \\ x')).rejects.toThrow(/WRONGPASS/);
    expect(await get(layout, 'k', 'second')).toBe('v');
  });

  it("disables root: root's password stops working, yet Redis keeps one, also after a restart", async () => {
    await manager.disableRoot();
    await expect(get(layout, 'k', 'second')).rejects.toThrow(/WRONGPASS/);
    await expect(get(layout, 'k')).rejects.toThrow(/NOAUTH/);
    expect(await manager.status()).toBe('healthy');
    await manager.restart();
    await expect(get(layout, 'k')).rejects.toThrow(/NOAUTH/);
    expect(await manager.status()).toBe('healthy');
    // Enabling root again gives a working password on the same data.
    await manager.enableRoot('third');
    expect(await get(layout, 'k', 'third')).toBe('v');
  });

  it('answers NotImplemented for databases, users and access', async () => {
    const engine: EngineManager = manager;
    const calls: (() => Promise<unknown>)[] = [
      () => engine.listDatabases(),
      () => engine.createDatabases([{ name: 'x' }]),
      () => engine.deleteDatabase('x'),
      () => engine.listUsers(),
      () => engine.getUser('x', '%'),
      () => engine.createUsers([{ name: 'x', password: 'y' }]),
      () => engine.deleteUser('x', '%'),
      () => engine.updateUser('x', '%', { password: 'y' }),
      () => engine.changePasswords([{ name: 'x', password: 'y' }]),
      () => engine.listAccess('x', '%'),
      () => engine.grantAccess('x', '%', ['x']),
      () => engine.revokeAccess('x', '%', 'x'),
    ];
    for (const call of calls) await expect(call()).rejects.toMatchObject({ name: 'NotImplemented' });
  });
});

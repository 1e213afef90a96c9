import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EngineLayout } from '../../../agent/engines/manager.ts';
import { RedisManager } from '../../../agent/engines/redis.ts';
import { parameterRules } from '../../../lib/configurations/parameters/index.ts';
import { stopAndRemove, tempLayout } from './helpers.ts';
import { describeOverrides, describeWholeCatalog } from './overrides.ts';

// The Redis parameter catalog against Redis 7.0 itself, and configuration groups applied to a
// real instance. Redis 7.0 has restart-only configs (immutable ones): databases is the example.

/** maxclients above the process's file limit is refused live; the limit is the machine's, not Redis's. */
const BOUNDS_NOT_LIVE = new Set(['maxclients']);

/** Through the socket, by default with the agent's own password (Redis always has one). */
async function connect(layout: EngineLayout, password?: string): Promise<Redis> {
  const client = new Redis({
    path: join(layout.baseDir, 'run', 'redis.sock'),
    password: password ?? (await readFile(join(layout.baseDir, 'admin-password'), 'utf8')),
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  client.on('error', () => {});
  await client.connect();
  return client;
}

describe('redis parameter catalog', () => {
  const rules = parameterRules('redis');
  let layout: EngineLayout;
  let manager: RedisManager;
  let client: Redis;

  beforeAll(async () => {
    layout = await tempLayout('redis-params');
    manager = new RedisManager(layout);
    await manager.prepare({ memoryMb: 256, databases: [], users: [] });
    client = await connect(layout);
  });
  afterAll(async () => {
    client?.disconnect();
    await stopAndRemove(manager, layout);
  });

  const get = async (name: string) => ((await client.call('CONFIG', 'GET', name)) as string[])[1];
  const set = (name: string, value: string) =>
    client.call('CONFIG', 'SET', name, value).then(
      () => 'taken',
      (err: Error) => (/immutable config/.test(err.message) ? 'immutable' : err.message),
    );

  it('takes CONFIG SET to the current value exactly for the dynamic rules', async () => {
    for (const rule of rules) {
      const value = await get(rule.name);
      expect(value, rule.name).toBeDefined();
      if (rule.type === 'boolean') expect(value, rule.name).toMatch(/^(yes|no)$/);
      if (rule.type === 'integer') expect(value, rule.name).toMatch(/^-?\d+$/);
      expect(await set(rule.name, value as string), rule.name).toBe(
        rule.restart_required ? 'immutable' : 'taken',
      );
    }
  });

  it('takes the bounds of the dynamic integer rules, and refuses below the minimum where Redis has one', async () => {
    for (const rule of rules.filter((r) => r.type === 'integer' && !r.restart_required)) {
      if (BOUNDS_NOT_LIVE.has(rule.name)) continue;
      const value = (await get(rule.name)) as string;
      expect(await set(rule.name, String(rule.min)), `${rule.name} min`).toBe('taken');
      expect(await set(rule.name, String(rule.max)), `${rule.name} max`).toBe('taken');
      expect(await set(rule.name, value), rule.name).toBe('taken');
    }
  });
});

describeWholeCatalog({ name: 'redis', manager: 'redis', make: (layout) => new RedisManager(layout) });

describeOverrides({
  name: 'redis',
  manager: 'redis',
  make: (layout) => new RedisManager(layout),
  dynamic: { name: 'maxmemory-policy', value: 'allkeys-lru', shown: 'allkeys-lru' },
  restartOnly: { name: 'databases', value: 32, shown: '32' },
  // One CONFIG SET for all: the good value is not applied either.
  refused: { timeout: 100, 'maxmemory-policy': 'bogus' },
  // CONFIG REWRITE reformats redis.conf (sizes as 192mb, one line per save pair): what matters
  // is the value of the settings the tests override, a missing line meaning Redis's default.
  configFiles: async (layout) => {
    const conf = await readFile(join(layout.baseDir, 'conf', 'redis.conf'), 'utf8');
    const settings = new Map([
      ['maxmemory-policy', 'noeviction'],
      ['databases', '16'],
      ['timeout', '0'],
    ]);
    for (const line of conf.split('\n')) {
      const [name, ...args] = line.trim().split(/\s+/);
      if (name && settings.has(name)) settings.set(name, args.join(' '));
    }
    return JSON.stringify([...settings]);
  },
  extra: (current) => {
    it('keeps a pending restart-only override when root is enabled (CONFIG REWRITE)', async () => {
      const { manager, layout } = current();
      const rules = parameterRules('redis');
      const conf = join(layout.baseDir, 'conf', 'redis.conf');
      expect(
        await manager.applyOverrides({ databases: 24, 'stop-writes-on-bgsave-error': false }, rules),
      ).toEqual({
        restartRequired: true,
      });
      await manager.enableRoot('s3cret');
      expect(await readFile(conf, 'utf8')).toMatch(/^databases 24$/m);
      expect((await stat(conf)).mode & 0o077).toBe(0);
      await manager.restart();
      expect(await manager.currentValues(['databases', 'stop-writes-on-bgsave-error'])).toEqual({
        databases: '24',
        'stop-writes-on-bgsave-error': 'no',
      });
      const client = await connect(layout, 's3cret');
      try {
        expect(await client.select(23)).toBe('OK');
      } finally {
        client.disconnect();
      }
      expect(await manager.removeOverrides(rules)).toEqual({ restartRequired: true });
      await manager.disableRoot();
      expect(await readFile(conf, 'utf8')).toMatch(/^databases 16$/m);
      await manager.restart();
      expect(await manager.currentValues(['databases', 'stop-writes-on-bgsave-error'])).toEqual({
        databases: '16',
        'stop-writes-on-bgsave-error': 'yes',
      });
    });
  },
});

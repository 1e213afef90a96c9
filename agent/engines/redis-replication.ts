import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { ReplicationSource, ReplicationStatus } from './manager.ts';
import { waitFor } from './process.ts';
import { quote } from './redis-overrides.ts';
import type { ReplicationRole } from './replication-state.ts';

// Redis's own replication (REPLICAOF): a replica follows its source over TLS as the set's
// replication user, an ACL user allowed nothing but the replication commands.

const ACL_RULES = ['+psync', '+replconf', '+ping'];

function aclLine(account: { user: string; password: string }): string[] {
  const hash = createHash('sha256').update(account.password).digest('hex');
  return [account.user, 'reset', 'on', `#${hash}`, ...ACL_RULES];
}

/** The redis.conf lines for this member's role (configure renders them; CONFIG REWRITE keeps them). */
export function roleLines(state: ReplicationRole | undefined, tls: boolean): string[] {
  const lines: string[] = [];
  if (state?.account) lines.push(`user ${aclLine(state.account).join(' ')}`);
  const source = state?.role === 'replica' ? state.source : undefined;
  if (source) {
    lines.push(
      `replicaof ${source.host} ${source.port}`,
      `masteruser ${quote(source.user)}`,
      `masterauth ${quote(source.password)}`,
      'replica-read-only yes',
      ...(tls ? ['tls-replication yes'] : []),
    );
  }
  return lines;
}

export async function ensureReplicationUser(
  client: Redis,
  account: { user: string; password: string },
): Promise<void> {
  await client.call('ACL', 'SETUSER', ...aclLine(account));
}

export async function follow(client: Redis, source: ReplicationSource, tls: boolean): Promise<void> {
  await client.config('SET', 'masteruser', source.user);
  await client.config('SET', 'masterauth', source.password);
  await client.config('SET', 'replica-read-only', 'yes');
  if (tls) await client.config('SET', 'tls-replication', 'yes');
  await client.call('REPLICAOF', source.host, String(source.port));
  // Writes held by a switchover's pause now meet a replica: refused (READONLY), never applied.
  await client.call('CLIENT', 'UNPAUSE');
}

export function info(text: string): Record<string, string> {
  return Object.fromEntries(
    text
      .split(/\r?\n/)
      .filter((l) => l.includes(':') && !l.startsWith('#'))
      .map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1)]),
  );
}

export async function untilLinked(
  infoOf: () => Promise<Record<string, string>>,
  why: () => Promise<string | undefined>,
  timeoutMs = 30_000,
): Promise<void> {
  try {
    await waitFor(
      'redis to sync with its source',
      async () => ((await infoOf()).master_link_status === 'up' ? true : undefined),
      { timeoutMs, intervalMs: 250 },
    );
  } catch {
    throw new Error(`redis: replication did not start: ${(await why()) ?? 'the link to the source is down'}`);
  }
}

export function status(i: Record<string, string>, isSource: boolean): ReplicationStatus | undefined {
  if (i.role === 'master')
    return isSource ? { role: 'source', position: i.master_repl_offset ?? '' } : undefined;
  const running = i.master_link_status === 'up';
  const behind = Number(i.master_repl_offset ?? 0) - Number(i.slave_repl_offset ?? 0);
  return {
    role: 'replica',
    source: `${i.master_host}:${i.master_port}`,
    running,
    ...(running ? { lag_seconds: Number(i.master_last_io_seconds_ago ?? 0) } : {}),
    lag_bytes: Math.max(0, Number.isFinite(behind) ? behind : 0),
    position: i.slave_repl_offset ?? '',
  };
}

/** Redis's own words for a broken link: its last replication error line in the log. */
export function lastError(log: string): string | undefined {
  const lines = log
    .split('\n')
    .filter(
      (l) =>
        /(Error|error|Unable|failed|refused|AUTH)/.test(l) &&
        /(MASTER|PRIMARY|master|primary|SYNC|replica)/.test(l),
    );
  return lines[lines.length - 1]?.replace(/^\d+:[A-Z] [^*#.-]*[*#.-] /, '').trim();
}

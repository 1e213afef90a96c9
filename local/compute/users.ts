import { readdir, readFile } from 'node:fs/promises';
import { tool, tryTool } from './run.ts';

// Each instance's own OS user and group (useradd --user-group): its engine runs as it, its files
// belong to it, and no other instance's user can read them. Named after the server id, so a
// host that lost its records can still tell its users from everyone else's.

export const USER_PREFIX = 'tl-';

/** `tl-` and 12 hex digits of the server id: short enough for every tool (32 chars max). */
export function userNameFor(serverId: string): string {
  return `${USER_PREFIX}${serverId.replace(/^srv-/, '').replaceAll('-', '').slice(0, 12)}`;
}

let queue: Promise<unknown> = Promise.resolve();

/** useradd/userdel lock /etc/passwd: one at a time in this host, and retried if another holds it. */
function serialized<T>(task: () => Promise<T>): Promise<T> {
  const run = queue.catch(() => {}).then(task);
  queue = run.catch(() => {});
  return run;
}

async function withPasswdLockRetry(command: string, args: string[], okCodes: number[]): Promise<number> {
  for (let attempt = 0; ; attempt++) {
    const out = await tryTool(command, args);
    if (out.code === 0 || okCodes.includes(out.code)) return out.code;
    // 10: cannot lock /etc/passwd (another process is adding a user): wait a little and retry.
    if (out.code !== 10 || attempt >= 20) {
      throw new Error(`${command} ${args.join(' ')} failed (exit ${out.code}): ${out.stderr.trim()}`);
    }
    await new Promise((r) => setTimeout(r, 100 + attempt * 50));
  }
}

/** The ids of a passwd(5) line (`name:x:uid:gid:...`), if it is one. */
function idsOf(line: string | undefined): { uid: number; gid: number } | undefined {
  const [, , uid, gid] = line?.trim().split(':') ?? [];
  return uid && gid ? { uid: Number(uid), gid: Number(gid) } : undefined;
}

export async function lookupUser(name: string): Promise<{ uid: number; gid: number } | undefined> {
  const out = await tryTool('getent', ['passwd', name]);
  return out.code === 0 ? idsOf(out.stdout) : undefined;
}

/** The user's ids from /etc/passwd itself, where useradd writes a local account. */
async function localUser(name: string): Promise<{ uid: number; gid: number } | undefined> {
  const passwd = await readFile('/etc/passwd', 'utf8').catch(() => '');
  return idsOf(passwd.split('\n').find((l) => l.startsWith(`${name}:`)));
}

/** Creates the user and its group (a system account: no home, no login shell). Idempotent. */
export function createUser(name: string): Promise<{ uid: number; gid: number }> {
  return serialized(async () => {
    // No lookup first: useradd says itself that the user exists (a retried launch), one spawn less.
    await withPasswdLockRetry(
      'useradd',
      [
        '--system',
        '--user-group',
        '--no-create-home',
        '--home-dir',
        '/nonexistent',
        '--shell',
        '/usr/sbin/nologin',
        name,
      ],
      [9], // 9: already exists (a retried launch)
    );
    // Read where useradd wrote it: one process less than getent on every launch's path.
    const created = (await localUser(name)) ?? (await lookupUser(name));
    if (!created) throw new Error(`useradd ${name} succeeded but the user cannot be found`);
    return created;
  });
}

/** Kills whatever still runs as the user (a tenant's COPY ... PROGRAM child left behind). */
export async function killProcessesOf(name: string): Promise<void> {
  const user = await lookupUser(name);
  if (!user) return;
  for (let round = 0; round < 50; round++) {
    const pids = await processesOf(user.uid);
    if (pids.length === 0) break;
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Removes the user (and its group), once nothing runs as it any more. */
export async function removeUser(name: string): Promise<void> {
  await killProcessesOf(name);
  if (!(await lookupUser(name))) return;
  // 6: no such user (removed meanwhile). userdel removes the user's own group with it.
  await serialized(() => withPasswdLockRetry('userdel', [name], [6]));
}

/** Live processes whose real uid is `uid`. */
export async function processesOf(uid: number): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const status = await readFile(`/proc/${entry}/status`, 'utf8').catch(() => '');
    const uidLine = /^Uid:\s+(\d+)/m.exec(status);
    const state = /^State:\s+(\S)/m.exec(status)?.[1];
    if (uidLine && Number(uidLine[1]) === uid && state !== 'Z') pids.push(Number(entry));
  }
  return pids;
}

/** Users this module created (for reaping what a dead host left). */
export async function listInstanceUsers(): Promise<string[]> {
  const passwd = await tool('getent', ['passwd']);
  return passwd
    .split('\n')
    .map((line) => line.split(':')[0] ?? '')
    .filter((name) => name.startsWith(USER_PREFIX));
}

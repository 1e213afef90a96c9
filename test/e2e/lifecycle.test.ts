import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import Redis from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { LEFTOVER_MARKERS } from '../../local/cloud.ts';
import { stopComputeLeftovers } from '../../local/compute/host.ts';
import { freePort } from '../../local/ports.ts';
import { reapLeftovers } from '../../local/processes.ts';
import { waitUntil } from '../../local/wait.ts';
import { endpointOf, type InstanceView } from './instance-helpers.ts';
import { processesMentioning } from './processes.ts';

// `npm start` as a user runs it: in the foreground, state kept under its state directory across
// restarts, wiped on request, and Ctrl-C (SIGINT) leaves no process or port behind.
const root = resolve(import.meta.dirname, '../..');

const listening = (port: number) =>
  new Promise<boolean>((ok) => {
    const socket = createConnection({ port, host: '127.0.0.1' });
    socket.once('connect', () => {
      socket.destroy();
      ok(true);
    });
    socket.once('error', () => ok(false));
  });

interface Running {
  child: ChildProcess;
  output: () => string;
  pids: number[];
}

describe('npm start', () => {
  let stateDir = '';
  let env: NodeJS.ProcessEnv = {};
  let ports: number[] = [];
  const children: ChildProcess[] = [];
  // A run that failed or timed out half-way must not leave its cloud running (a whole cloud
  // held a core for an hour once): stop what is still up, then its guests, then drop the state.
  afterAll(async () => {
    for (const child of children) {
      // tsx runs start.ts in a child of its own: signal the whole group, not only the wrapper.
      if (child.pid && child.exitCode === null && child.signalCode === null) {
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {}
      }
    }
    if (stateDir) {
      await reapLeftovers(join(stateDir, 'pids.json'), LEFTOVER_MARKERS);
      await stopComputeLeftovers({ stateDir, repoRoot: root });
      await rm(stateDir, { recursive: true, force: true });
    }
  });

  async function start(...flags: string[]): Promise<Running> {
    if (!stateDir) {
      stateDir = await mkdtemp(join(tmpdir(), 'troveless-start-'));
      ports = await Promise.all(Array.from({ length: 7 }, freePort));
      const names = ['API', 'LAMBDA', 'DYNAMODB', 'SQS', 'S3', 'STEPFUNCTIONS', 'COMPUTE'];
      env = { ...process.env, TROVELESS_STATE_DIR: stateDir, TROVELESS_REPORT_INTERVAL: '2' };
      names.forEach((n, i) => {
        env[`TROVELESS_${n}_PORT`] = String(ports[i]);
      });
    }
    const child = spawn(join(root, 'node_modules/.bin/tsx'), ['local/start.ts', ...flags], {
      cwd: root,
      detached: true,
      env,
    });
    children.push(child);
    let out = '';
    child.stdout?.on('data', (d) => {
      out += d;
    });
    child.stderr?.on('data', (d) => {
      out += d;
    });
    await waitUntil('ready line', async () => (out.includes('local cloud ready') ? true : undefined), {
      timeoutMs: 120_000,
      intervalMs: 200,
      abort: () => (child.exitCode !== null ? `exited: ${out}` : undefined),
    });
    const pids = (JSON.parse(readFileSync(join(stateDir, 'pids.json'), 'utf8')) as { pid: number }[]).map(
      (p) => p.pid,
    );
    return { child, output: () => out, pids };
  }

  async function interrupt(run: Running) {
    const exited = new Promise<number | null>((ok) => run.child.once('exit', ok));
    run.child.kill('SIGINT');
    expect(await exited).toBe(0);
    for (const pid of run.pids) expect(existsSync(`/proc/${pid}`), `process ${pid} left behind`).toBe(false);
    for (const port of ports) expect(await listening(port), `port ${port} still open`).toBe(false);
  }

  const apiBase = () => `http://127.0.0.1:${ports[0]}`;
  async function adminToken(): Promise<{ token: string; project: string }> {
    const res = await fetch(`${apiBase()}/v3/auth/tokens`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        auth: {
          identity: {
            methods: ['password'],
            password: { user: { name: 'admin', password: 'admin', domain: { id: 'default' } } },
          },
          scope: { project: { name: 'admin', domain: { id: 'default' } } },
        },
      }),
    });
    const body = (await res.json()) as { token: { project: { id: string } } };
    return { token: res.headers.get('x-subject-token') ?? '', project: body.token.project.id };
  }
  async function api(method: string, path: string, body?: object) {
    const { token, project } = await adminToken();
    const res = await fetch(`${apiBase()}/v1.0/${project}${path}`, {
      method,
      headers: { 'x-auth-token': token, 'content-type': 'application/json' },
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await res.text();
    return { status: res.status, json: text ? (JSON.parse(text) as Record<string, unknown>) : undefined };
  }
  async function waitHealthy(id: string) {
    return waitUntil(
      'instance healthy',
      async () => {
        const view = (await api('GET', `/instances/${id}`)).json?.instance as
          | Record<string, unknown>
          | undefined;
        return view?.status === 'ACTIVE' && view.operating_status === 'HEALTHY' ? view : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 500 },
    );
  }
  /** As a user connects: TLS verified against the CA `GET /ssl` names, with the password root enable returns. */
  async function redisAt(view: Record<string, unknown>) {
    const { host, port } = endpointOf(view as InstanceView);
    const ssl = (await api('GET', `/instances/${String(view.id)}/ssl`)).json?.ssl as {
      ca_certificate: string;
    };
    const root = (await api('POST', `/instances/${String(view.id)}/root`)).json?.user as { password: string };
    const redis = new Redis({
      host,
      port,
      password: root.password,
      tls: { ca: ssl.ca_certificate, rejectUnauthorized: true },
      lazyConnect: true,
      maxRetriesPerRequest: 1,
    });
    await redis.connect();
    return redis;
  }

  it('keeps instances and their data across a restart, wipes on request, and stops everything on Ctrl-C', async () => {
    const first = await start();
    expect(first.output()).toMatch(/Trove API \(v1\.0\)\s+http:\/\/127\.0\.0\.1:\d+\/v1\.0\/<project_id>/);
    // The command it suggests reaches this cloud's identity endpoint, wherever its port is.
    expect(first.output()).toContain(`--os-auth-url http://127.0.0.1:${ports[0]}/v3 `);
    const created = await api('POST', '/instances', {
      instance: { name: 'survivor', flavorRef: '7', volume: { size: 1 }, datastore: { type: 'redis' } },
    });
    const id = String((created.json as { instance: { id: string } }).instance.id);
    const ready = await waitHealthy(id);
    const writer = await redisAt(ready);
    await writer.set('kv', 'kept');
    await writer.save();
    writer.disconnect();
    const serverId = String(ready.server_id);
    await interrupt(first);
    // Ctrl-C stops the guests too: no agent or engine of the instance is left, and its volume
    // is unmounted (the next start mounts it again).
    expect(processesMentioning(serverId)).toEqual([]);
    expect(readFileSync('/proc/mounts', 'utf8')).not.toContain(serverId);

    const second = await start();
    const back = await waitHealthy(id);
    const reader = await redisAt(back);
    expect(await reader.get('kv')).toBe('kept');
    reader.disconnect();
    await interrupt(second);

    const wiped = await start('--wipe');
    expect((await api('GET', '/instances')).json).toEqual({ instances: [] });
    await interrupt(wiped);
    expect(processesMentioning(serverId)).toEqual([]);
    // Three starts of a whole cloud (each waited for up to 120 s) and a create: 116 s in CI once,
    // against the 120 s every other test gets.
  }, 420_000);
});

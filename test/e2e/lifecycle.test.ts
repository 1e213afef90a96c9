import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { DynamoDBClient, GetItemCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../../local/ports.ts';
import { waitUntil } from '../../local/wait.ts';

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
  afterAll(() => rm(stateDir, { recursive: true, force: true }));

  async function start(...flags: string[]): Promise<Running> {
    if (!stateDir) {
      stateDir = await mkdtemp(join(tmpdir(), 'troveless-start-'));
      ports = await Promise.all(Array.from({ length: 7 }, freePort));
      const names = ['API', 'LAMBDA', 'DYNAMODB', 'SQS', 'S3', 'STEPFUNCTIONS', 'COMPUTE'];
      env = { ...process.env, TROVELESS_STATE_DIR: stateDir };
      names.forEach((n, i) => {
        env[`TROVELESS_${n}_PORT`] = String(ports[i]);
      });
    }
    const child = spawn(join(root, 'node_modules/.bin/tsx'), ['local/start.ts', ...flags], {
      cwd: root,
      env,
    });
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

  const ddb = () =>
    new DynamoDBClient({
      endpoint: `http://127.0.0.1:${ports[2]}`,
      region: 'us-east-1',
      credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    });
  const key = { project_id: { S: 'p' }, id: { S: 'kept-across-restarts' } };
  const read = async () =>
    (await ddb().send(new GetItemCommand({ TableName: 'troveless-local-instances', Key: key }))).Item;

  it('keeps state across a restart, wipes it on request, and stops everything on Ctrl-C', async () => {
    const first = await start();
    expect(first.output()).toMatch(/Trove API \(v1\.0\)\s+http:\/\/127\.0\.0\.1:\d+\/v1\.0\/<project_id>/);
    expect(first.pids.length).toBeGreaterThanOrEqual(3);
    await ddb().send(
      new PutItemCommand({
        TableName: 'troveless-local-instances',
        Item: { ...key, name: { S: 'x' }, created: { S: 'c' }, updated: { S: 'u' } },
      }),
    );
    await interrupt(first);

    const second = await start();
    expect((await read())?.name?.S).toBe('x');
    await interrupt(second);

    const wiped = await start('--wipe');
    expect(await read()).toBeUndefined();
    await interrupt(wiped);
  });
});

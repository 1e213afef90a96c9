import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, describe, expect, it } from 'vitest';
import { bundleAgent, localImageOf } from '../../local/agent-bundle.ts';
import { computeHostSecret, stopComputeLeftovers } from '../../local/compute/host.ts';
import { startComputeHostProcess } from '../../local/compute/process.ts';
import { freePort } from '../../local/ports.ts';
import { ProcessGroup } from '../../local/processes.ts';
import { waitUntil } from '../../local/wait.ts';

// The local cloud runs its compute host as a process of its own (local/compute/process.ts): it
// answers only with its secret, goes when the cloud closes it, and goes too when the cloud dies
// outright, rather than stay behind holding its port.

const repoRoot = resolve(import.meta.dirname, '../..');
const dirs: string[] = [];
afterAll(async () => {
  for (const dir of dirs) {
    await stopComputeLeftovers({ stateDir: dir, repoRoot }).catch(() => {});
    await rm(dir, { recursive: true, force: true });
  }
});

async function stateDir() {
  const dir = await mkdtemp(join(tmpdir(), 'tl-chp-'));
  dirs.push(dir);
  return dir;
}

/** Running (a zombie nobody has reaped yet is gone for this purpose). */
const alive = (pid: number) => {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
};

const listServers = (endpoint: string, secret?: string) =>
  fetch(`${endpoint}/servers`, { headers: secret ? { authorization: `Bearer ${secret}` } : {} });

describe('the compute host process', () => {
  it('answers callers with its secret, serves the image it was given, and exits when closed', async () => {
    const dir = await stateDir();
    const procs = new ProcessGroup(join(dir, 'pids.json'));
    const image = await localImageOf(await bundleAgent(repoRoot, dir));
    const host = await startComputeHostProcess(procs, {
      port: await freePort(),
      host: '127.0.0.1',
      stateDir: dir,
      repoRoot,
      agentEnv: {},
      image,
      logDir: join(dir, 'logs'),
      log: () => {},
    });
    try {
      expect((await listServers(host.endpoint)).status).toBe(401);
      const listed = await listServers(host.endpoint, await computeHostSecret(dir));
      expect(listed.status).toBe(200);
      expect(await listed.json()).toEqual({ servers: [] });
      // Its image is the bundle it was given.
      const images = await fetch(`${host.endpoint}/images/${image.id}`, {
        headers: { authorization: `Bearer ${await computeHostSecret(dir)}` },
      });
      expect(images.status).toBe(200);
    } finally {
      await host.close({ stopServers: true });
    }
    // Gone, port and all.
    await expect(listServers(host.endpoint)).rejects.toThrow();
    await procs.stopAll();
  });

  it('goes when the local cloud that started it is killed outright', async () => {
    const dir = await stateDir();
    // A stand-in for the local cloud: it starts the host, prints its pid, and waits.
    const parent = join(dir, 'cloud.mts');
    await writeFile(
      parent,
      [
        `import { bundleAgent, localImageOf } from ${JSON.stringify(join(repoRoot, 'local/agent-bundle.ts'))};`,
        `import { startComputeHostProcess } from ${JSON.stringify(join(repoRoot, 'local/compute/process.ts'))};`,
        `import { ProcessGroup } from ${JSON.stringify(join(repoRoot, 'local/processes.ts'))};`,
        "import { readFileSync } from 'node:fs';",
        `const dir = ${JSON.stringify(dir)};`,
        "const procs = new ProcessGroup(dir + '/pids.json');",
        `const image = await localImageOf(await bundleAgent(${JSON.stringify(repoRoot)}, dir));`,
        'const host = await startComputeHostProcess(procs, { port: 0, host: "127.0.0.1", stateDir: dir,',
        `  repoRoot: ${JSON.stringify(repoRoot)}, agentEnv: {}, image, logDir: dir + '/logs', log: () => {} });`,
        "const { pid } = JSON.parse(readFileSync(dir + '/pids.json', 'utf8'))[0];",
        'console.log(JSON.stringify({ pid, endpoint: host.endpoint }));',
        'setInterval(() => {}, 1000);',
      ].join('\n'),
    );
    const cloud = spawn(process.execPath, ['--import', 'tsx', parent], {
      cwd: repoRoot,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    cloud.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const first = await new Promise<string>((ok, fail) => {
      createInterface({ input: cloud.stdout }).once('line', ok);
      cloud.once('exit', (code) => fail(new Error(`the stand-in cloud exited (${code}): ${stderr}`)));
    });
    const { pid, endpoint } = JSON.parse(first) as { pid: number; endpoint: string };
    expect(alive(pid)).toBe(true);
    expect((await listServers(endpoint, await computeHostSecret(dir))).status).toBe(200);

    cloud.kill('SIGKILL');
    await waitUntil('the compute host gone', async () => !alive(pid) || undefined, { timeoutMs: 20_000 });
    await expect(listServers(endpoint)).rejects.toThrow();
  });
});

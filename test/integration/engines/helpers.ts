import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import type { ProcessEngine } from '../../../agent/engines/base.ts';
import type { EngineLayout, ServiceStatusDescription } from '../../../agent/engines/manager.ts';
import { isEngineProcess, waitFor } from '../../../agent/engines/process.ts';
import { freePort } from '../../../local/ports.ts';

// Shared plumbing for the engine tests: throwaway base dirs on free ports, bounded waits for a
// status, and a cleanup that proves no engine process is left behind.

export async function tempLayout(engine: string): Promise<EngineLayout> {
  const baseDir = await mkdtemp(join(tmpdir(), `tl-${engine}-`));
  return { baseDir, port: await freePort(), bindAddress: '127.0.0.1' };
}

export function waitForStatus(
  manager: ProcessEngine,
  want: ServiceStatusDescription,
  timeoutMs = 10_000,
): Promise<true> {
  return waitFor(`status ${want}`, async () => ((await manager.status()) === want ? true : undefined), {
    timeoutMs,
    intervalMs: 100,
  });
}

/** A plain TCP server holding `port`, standing in for whatever else grabbed it. */
export function occupy(port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer((socket) => socket.destroy());
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}

export function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

/** Stops the engine, checks that its process is really gone, and removes the base dir. */
export async function stopAndRemove(manager: ProcessEngine | undefined, layout: EngineLayout | undefined) {
  if (!layout) return;
  if (manager) {
    const pid = await manager.pid();
    await manager.stop();
    if (pid) expect(await isEngineProcess(pid, '')).toBe(false);
    expect(await manager.pid()).toBeUndefined();
  }
  await rm(layout.baseDir, { recursive: true, force: true });
}

import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ProcessEngine } from '../../../agent/engines/base.ts';
import type { DatastoreManager } from '../../../agent/engines/index.ts';
import type { EngineLayout, PrepareOptions } from '../../../agent/engines/manager.ts';
import { isEngineProcess, portOpen, waitFor } from '../../../agent/engines/process.ts';
import { stopAndRemove, tempLayout, waitForStatus } from './helpers.ts';

// The lifecycle every engine must get right, run against the real engine: prepare, use, restart,
// stop, start again from a new manager object (as after an agent restart), crash.

export interface Instance {
  manager: ProcessEngine;
  layout: EngineLayout;
}

export interface EngineSubject {
  name: string;
  kind: DatastoreManager;
  make(layout: EngineLayout): ProcessEngine;
  options: PrepareOptions;
  /** Writes `value` under `key` as the prepared user, through the real client driver. */
  write(layout: EngineLayout, key: string, value: string): Promise<void>;
  read(layout: EngineLayout, key: string): Promise<string | undefined>;
  /** Registers extra tests on the healthy instance (odd identifiers and the like); `current` is read inside them. */
  extra?: (current: () => Instance) => void;
}

export function describeLifecycle(subject: EngineSubject): void {
  describe(`${subject.name} lifecycle`, () => {
    let layout: EngineLayout;
    let manager: ProcessEngine;

    beforeAll(async () => {
      layout = await tempLayout(subject.name);
      manager = subject.make(layout);
    });
    afterAll(() => stopAndRemove(manager, layout));

    it('prepares to healthy, and the user can write and read', async () => {
      await manager.prepare(subject.options);
      expect(await manager.status()).toBe('healthy');
      await subject.write(layout, 'k1', 'v1');
      expect(await subject.read(layout, 'k1')).toBe('v1');
      const fs = await manager.filesystemStats();
      expect(fs.used_bytes).toBeGreaterThan(0);
      expect(fs.total_bytes).toBeGreaterThan(fs.used_bytes);
    });

    it('takes a second prepare without re-initialising', async () => {
      const pid = await manager.pid();
      await manager.prepare(subject.options);
      expect(await manager.pid()).toBe(pid);
      expect(await subject.read(layout, 'k1')).toBe('v1');
    });

    it('restarts with its data intact, and is never seen as crashed on the way', async () => {
      const before = await manager.pid();
      // Heartbeats read the status while a restart runs: "crashed" there would be a fault on the
      // instance for an engine that was stopped on purpose and is being started.
      const seen = new Set<string>();
      let restarting = true;
      const watching = (async () => {
        while (restarting) {
          seen.add(await manager.status());
          await new Promise((r) => setTimeout(r, 5));
        }
      })();
      await manager.restart().finally(() => {
        restarting = false;
      });
      await watching;
      expect([...seen]).toContain('shutdown');
      expect([...seen]).not.toContain('crashed');
      expect(await manager.pid()).not.toBe(before);
      expect(await manager.status()).toBe('healthy');
      expect(await subject.read(layout, 'k1')).toBe('v1');
    });

    it('is stopped to shutdown by a manager object that did not start it', async () => {
      const pid = await manager.pid();
      manager = subject.make(layout);
      await manager.stop();
      expect(await manager.status()).toBe('shutdown');
      expect(await isEngineProcess(pid as number, '')).toBe(false);
      expect(await portOpen(layout.bindAddress, layout.port)).toBe(false);
    });

    it('is started again by a new manager object and still has the data', async () => {
      manager = subject.make(layout);
      await manager.start();
      expect(await manager.status()).toBe('healthy');
      expect(await subject.read(layout, 'k1')).toBe('v1');
    });

    it('outlives an agent process that started it and was killed', async () => {
      await manager.stop();
      const agent = await startAgent(subject.kind, layout);
      const pid = await manager.pid();
      agent.kill('SIGKILL');
      await once(agent, 'exit');
      manager = subject.make(layout);
      expect(await manager.status()).toBe('healthy');
      expect(await manager.pid()).toBe(pid);
      expect(await subject.read(layout, 'k1')).toBe('v1');
    });

    subject.extra?.(() => ({ manager, layout }));

    it('clears a stopped marker an interrupted start left on a running engine when started again, as at boot', async () => {
      // An agent killed between the engine's spawn and the marker's removal leaves both.
      const marker = join(layout.baseDir, 'stopped');
      await writeFile(marker, '');
      const pid = await manager.pid();
      await manager.start();
      expect(await manager.pid()).toBe(pid);
      expect(existsSync(marker)).toBe(false);
    });

    it('reports crashed when its process is killed', async () => {
      const pid = await manager.pid();
      expect(pid).toBeDefined();
      process.kill(pid as number, 'SIGKILL');
      await waitForStatus(manager, 'crashed');
    });
  });
}

/** Runs agent-fixture.ts in its own node process, which starts the engine; resolves once it has. */
async function startAgent(kind: DatastoreManager, layout: EngineLayout): Promise<ChildProcess> {
  const fixture = fileURLToPath(new URL('./agent-fixture.ts', import.meta.url));
  const agent = spawn(process.execPath, ['--import', 'tsx', fixture, kind, JSON.stringify(layout)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let output = '';
  agent.stdout?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  let exited: string | undefined;
  agent.once('exit', (code) => {
    exited = `agent exited with ${code}`;
  });
  const started = async () => (output.includes('started') ? true : undefined);
  await waitFor('agent to start the engine', started, { timeoutMs: 30_000, abort: () => exited }).catch(
    (err) => {
      agent.kill('SIGKILL');
      throw err;
    },
  );
  return agent;
}

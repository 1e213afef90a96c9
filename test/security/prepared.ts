import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Server } from '../../lib/compute/driver.ts';
import { agentLogPath } from '../../local/compute/records.ts';
import { waitUntil } from '../../local/wait.ts';

/**
 * Until the stand-in agent (engine-agent.ts) of `server` says its prepare went well (`ready`), or
 * throws with what it said went wrong (`failed`). Neither after `timeoutMs`: the error carries the
 * end of the agent's log, which says whether it died or still runs.
 */
export async function untilPrepared(stateDir: string, server: Server, what: string, timeoutMs: number) {
  const baseDir = join(stateDir, 'compute', server.id);
  await waitUntil(
    `${what} prepared`,
    async () => {
      const failed = await readFile(join(baseDir, 'failed'), 'utf8').catch(() => undefined);
      if (failed) throw new Error(`prepare failed: ${failed}`);
      return existsSync(join(baseDir, 'ready')) ? true : undefined;
    },
    { timeoutMs, intervalMs: 200 },
  ).catch(async (err: Error) => {
    const log = agentLogPath(join(stateDir, 'compute'), server.id);
    const tail = (await readFile(log, 'utf8').catch(() => '(no agent log)')).slice(-3000);
    throw new Error(`${err.message}; the agent's log ends:\n${tail}`);
  });
}

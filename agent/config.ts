import { readFile } from 'node:fs/promises';
import type { AgentConfigFile } from '../lib/compute/driver.ts';

/** The agent's only input: the file the compute layer wrote at boot (mode 0600, holds the key). */
export async function loadAgentConfig(path: string): Promise<AgentConfigFile> {
  const config = JSON.parse(await readFile(path, 'utf8')) as AgentConfigFile;
  for (const field of [
    'instance_id',
    'datastore_manager',
    'key',
    'guest_queue_url',
    'conductor_queue_url',
  ] as const) {
    if (!config[field]) throw new Error(`agent config ${path} lacks ${field}`);
  }
  return config;
}

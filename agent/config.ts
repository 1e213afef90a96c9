import { readFile } from 'node:fs/promises';
import type { SSMClient } from '@aws-sdk/client-ssm';
import type { AgentConfigFile } from '../lib/compute/driver.ts';

export type LoadedAgentConfig = AgentConfigFile & { key: string };

/**
 * The agent's only input: the file the compute layer wrote at boot (mode 0600). It holds the
 * instance key, or on EC2 the name of the instance's own SSM SecureString holding it.
 */
export async function loadAgentConfig(
  path: string,
  fetchKey: (parameter: string) => Promise<string> = keyFromSsm,
): Promise<LoadedAgentConfig> {
  const config = JSON.parse(await readFile(path, 'utf8')) as AgentConfigFile;
  for (const field of [
    'instance_id',
    'datastore_manager',
    'guest_queue_url',
    'conductor_queue_url',
  ] as const) {
    if (!config[field]) throw new Error(`agent config ${path} lacks ${field}`);
  }
  if (config.key) return { ...config, key: config.key };
  if (!config.key_parameter) throw new Error(`agent config ${path} lacks key and key_parameter`);
  return { ...config, key: await fetchKey(config.key_parameter) };
}

/**
 * The control plane tags the parameter with this instance's ARN right after launch, and only
 * then may this instance read it: until then it is refused (or not yet there), so keep asking
 * for a while, soon at first (the tag is usually there by the time the agent asks again), then
 * every 2 s for about two minutes. The SSM client is loaded here, not with the agent: a guest
 * whose config holds its key (the local cloud's) never needs it.
 */
export async function keyFromSsm(
  name: string,
  client?: SSMClient,
  delaysMs: number[] = [250, 500, 1000, ...Array.from({ length: 59 }, () => 2000)],
): Promise<string> {
  const { GetParameterCommand, SSMClient } = await import('@aws-sdk/client-ssm');
  const ssm = client ?? new SSMClient({});
  for (let attempt = 0; ; attempt++) {
    try {
      const out = await ssm.send(new GetParameterCommand({ Name: name, WithDecryption: true }));
      if (out.Parameter?.Value) return out.Parameter.Value;
      throw new Error(`parameter ${name} is empty`);
    } catch (err) {
      const delay = delaysMs[attempt];
      const retriable = ['AccessDeniedException', 'ParameterNotFound'].includes((err as Error).name);
      if (!retriable || delay === undefined) throw err;
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}

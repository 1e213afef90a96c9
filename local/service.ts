import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface CfnResource {
  Type: string;
  Properties?: Record<string, unknown>;
}

export interface SqsEventConfig {
  arn: unknown;
  batchSize?: number;
  maximumBatchingWindow?: number;
  functionResponseType?: string;
  enabled?: boolean;
}

export interface ResolvedFunction {
  name: string;
  handler: string;
  events?: Array<{ sqs?: SqsEventConfig | string } & Record<string, unknown>>;
}

export interface ResolvedService {
  service: string;
  provider: { stage: string; region: string };
  functions: Record<string, ResolvedFunction>;
  resources?: { Resources?: Record<string, CfnResource> };
  stepFunctions?: { stateMachines?: Record<string, { name?: string; definition: Record<string, unknown> }> };
}

/**
 * serverless.yml with every variable resolved, exactly as `serverless package` sees it: the
 * local cloud builds its tables, queues, event sources and state machines from this, so local
 * and deployed definitions cannot drift apart.
 */
export async function resolveService(
  stage: string,
  cwd: string,
  env: Record<string, string> = {},
): Promise<ResolvedService> {
  const cli = createRequire(import.meta.url).resolve('serverless/bin/serverless.js');
  const { stdout } = await run(process.execPath, [cli, 'print', '--stage', stage, '--format', 'json'], {
    cwd,
    env: { ...process.env, ...env, SLS_TELEMETRY_DISABLED: '1', SLS_NOTIFICATIONS_MODE: 'off' },
    maxBuffer: 32 * 1024 * 1024,
  });
  return JSON.parse(stdout.slice(stdout.indexOf('{'))) as ResolvedService;
}

export function resourcesOfType(service: ResolvedService, type: string): Array<[string, CfnResource]> {
  return Object.entries(service.resources?.Resources ?? {}).filter(([, r]) => r.Type === type);
}

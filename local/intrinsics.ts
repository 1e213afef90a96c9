import type { QueueInfo } from './provision.ts';
import { referencedLogicalId } from './provision.ts';
import type { ResolvedService } from './service.ts';

export const LOCAL_ACCOUNT = '123456789012';

/**
 * Resolves the CloudFormation references a resolved service still holds (Fn::GetAtt / Ref to
 * functions, queues and tables) into the local cloud's names and ARNs, the values CloudFormation
 * would substitute on deploy.
 */
export function intrinsicResolver(service: ResolvedService, queues: Map<string, QueueInfo>, region: string) {
  const functionNames = new Map<string, string>();
  for (const [key, fn] of Object.entries(service.functions)) {
    functionNames.set(key, fn.name);
    // serverless names a function's resource <Key>LambdaFunction, with the first letter upper-cased.
    functionNames.set(`${key[0]?.toUpperCase()}${key.slice(1)}LambdaFunction`, fn.name);
  }
  const tables = new Map<string, string>();
  for (const [id, r] of Object.entries(service.resources?.Resources ?? {})) {
    if (r.Type === 'AWS::DynamoDB::Table') tables.set(id, String(r.Properties?.TableName ?? id));
  }

  const resolveOne = (value: Record<string, unknown>): unknown => {
    const id = referencedLogicalId(value);
    if (!id) return undefined;
    const isRef = 'Ref' in value;
    const fn = functionNames.get(id);
    if (fn) return isRef ? fn : `arn:aws:lambda:${region}:${LOCAL_ACCOUNT}:function:${fn}`;
    const queue = queues.get(id);
    if (queue) return isRef ? queue.url : queue.arn;
    const table = tables.get(id);
    if (table) return isRef ? table : `arn:aws:dynamodb:${region}:${LOCAL_ACCOUNT}:table/${table}`;
    return undefined;
  };

  const resolve = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(resolve);
    if (typeof value !== 'object' || value === null) return value;
    const direct = resolveOne(value as Record<string, unknown>);
    if (direct !== undefined) return direct;
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, resolve(v)]));
  };
  return resolve;
}

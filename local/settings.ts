import { join } from 'node:path';
import type { LocalCloudOptions } from './cloud.ts';

function port(name: string, fallback: number): number {
  const raw = process.env[name];
  if (!raw) return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1 || value > 65535)
    throw new Error(`${name} must be a port number`);
  return value;
}

/** The local cloud's settings, each overridable by an environment variable listed in the README. */
export function localOptionsFromEnv(root: string, flags: { wipe: boolean }): LocalCloudOptions {
  return {
    root,
    stateDir: process.env.TROVELESS_STATE_DIR || join(root, '.local'),
    stage: process.env.TROVELESS_LOCAL_STAGE || 'local',
    host: '127.0.0.1',
    ports: {
      api: port('TROVELESS_API_PORT', 8779),
      lambda: port('TROVELESS_LAMBDA_PORT', 3002),
      dynamodb: port('TROVELESS_DYNAMODB_PORT', 8000),
      sqs: port('TROVELESS_SQS_PORT', 9324),
      s3: port('TROVELESS_S3_PORT', 4569),
      stepfunctions: port('TROVELESS_STEPFUNCTIONS_PORT', 8083),
      compute: port('TROVELESS_COMPUTE_PORT', 8774),
      doorbell: port('TROVELESS_DOORBELL_PORT', 3001),
    },
    external: {
      sqs: process.env.TROVELESS_SQS_ENDPOINT || undefined,
      dynamodb: process.env.TROVELESS_DYNAMODB_ENDPOINT || undefined,
      s3: process.env.TROVELESS_S3_ENDPOINT || undefined,
    },
    wipe: flags.wipe,
  };
}

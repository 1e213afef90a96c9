// `npm start`: the whole local cloud in the foreground. Ctrl-C stops everything it started.
//   npm start -- --wipe     start from empty state (.local/ is removed first)
//   npm start -- --watch    rebuild handlers when their sources change
import { resolve } from 'node:path';
import { startLocalCloud } from './cloud.ts';
import { PortInUse } from './port-check.ts';
import { MissingPrerequisite } from './prerequisites.ts';
import { localOptionsFromEnv } from './settings.ts';

const started = Date.now();
const wipe = process.argv.includes('--wipe');
// Rebuild handlers when their sources change (off by default: see serverless/watch.cjs).
if (process.argv.includes('--watch')) process.env.TROVELESS_WATCH = 'true';
const options = localOptionsFromEnv(resolve(import.meta.dirname, '..'), { wipe });
const log = (line: string) => console.log(`[troveless] ${line}`);

try {
  const cloud = await startLocalCloud({ ...options, log });
  const e = cloud.endpoints;
  console.log(
    [
      '',
      `Troveless local cloud ready in ${((Date.now() - started) / 1000).toFixed(1)} s (state in ${options.stateDir}; node ${process.version})`,
      `  Trove API (v1.0)   ${e.api}/v1.0/<project_id>`,
      `  Identity (v3)      ${e.identity}`,
      `  Lambda invoke      ${e.lambda}`,
      `  DynamoDB           ${e.dynamodb}`,
      `  SQS                ${e.sqs}`,
      `  S3                 ${e.s3}`,
      `  Step Functions     ${e.stepfunctions}`,
      `  State machines     ${cloud.stateMachines.join(', ') || '(none)'}`,
      `  Guest image        ${cloud.guestImage} (the agent bundle; \`database instance rebuild <instance> <image>\`)`,
      '',
      `Try: openstack --os-auth-url ${e.identity} --os-identity-api-version 3 --os-username admin \\`,
      '       --os-password admin --os-project-name admin --os-user-domain-id default \\',
      '       --os-project-domain-id default --os-region-name RegionOne database instance list',
      'Press Ctrl-C to stop.',
    ].join('\n'),
  );
  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log(`${signal}: stopping`);
    await cloud.stop();
    log('stopped');
    process.exit(signal === 'internal error' ? 1 : 0);
  };
  // A bug in the local cloud itself must not leave its children running.
  process.on('uncaughtException', (err) => {
    console.error('[troveless] internal error:', err);
    void shutdown('internal error');
  });
  process.on('unhandledRejection', (err) => {
    console.error('[troveless] internal error:', err);
    void shutdown('internal error');
  });
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGHUP', () => void shutdown('SIGHUP'));
} catch (err) {
  if (err instanceof MissingPrerequisite || err instanceof PortInUse) {
    console.error(`[troveless] ${err.message}`);
  } else {
    console.error('[troveless] the local cloud failed to start:', err instanceof Error ? err.message : err);
    console.error(`[troveless] logs are in ${options.stateDir}/logs`);
  }
  process.exit(1);
}

// The guest agent beside one database engine: `node agent/main.mjs <config.json>`, the bundle
// local/agent-bundle.ts builds (or `node --import tsx agent/main.ts <config.json>` from the sources);
// `... <config.json> --await-launch <datastore manager>` when started ahead of its launch.
import { SQSClient } from '@aws-sdk/client-sqs';
import { AWAIT_LAUNCH_FLAG } from '../lib/compute/agent-runtime.ts';
import { launchConfirmed } from './await-launch.ts';
import { loadAgentConfig } from './config.ts';
import { Doorbell } from './doorbell.ts';
import { createEngineManager, type DatastoreManager, preloadEngine } from './engines/index.ts';
import { Guest } from './guest.ts';
import { Reporter } from './reporter.ts';

const [path, flag, ahead] = process.argv.slice(2);
if (!path) {
  console.error('usage: agent/main.ts <agent config file> [--await-launch <datastore manager>]');
  process.exit(2);
}
if (flag === AWAIT_LAUNCH_FLAG) {
  // Everything above is loaded already; the engine's module loads while the host finishes.
  preloadEngine(ahead);
  if (!(await launchConfirmed())) process.exit(0);
}
const config = await loadAgentConfig(path);
const log = (line: string, fields: Record<string, unknown> = {}) =>
  console.log(
    JSON.stringify({ time: new Date().toISOString(), instance_id: config.instance_id, msg: line, ...fields }),
  );

const sqs = new SQSClient({ region: config.region });
const key = Buffer.from(config.key, 'base64');
// The one engine's manager (and its client library), before the first order: prepare needs it.
const engine = await createEngineManager(config.datastore_manager as DatastoreManager, {
  ...config.layout,
  instanceId: config.instance_id,
  datastoreVersion: config.datastore_version,
});
const guest = new Guest(
  config,
  key,
  engine,
  sqs,
  new Reporter(sqs, config.conductor_queue_url, key, config.instance_id),
  log,
  config.doorbell ? new Doorbell(config.doorbell.url, key, config.instance_id, log) : undefined,
);

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => {
    log(`${signal}: stopping (the engine keeps running)`);
    guest.stop();
  });
}

log('guest agent started', { datastore: config.datastore_manager, port: config.layout.port });
await guest.boot();
await Promise.all([guest.heartbeatLoop(), guest.receiveLoop(), guest.probeLoop(), guest.doorbellLoop()]);
log('guest agent stopped');
// Its loops are done (an order in hand is finished first): nothing else may keep it. ioredis
// leaves a failed connect's 2 s connectTimeout timer behind, and a Redis agent stopped right
// after stop_db (whose heartbeat finds the engine down) outlived its SIGTERM by 2 s, on every
// delete of a Redis instance.
process.exit(0);

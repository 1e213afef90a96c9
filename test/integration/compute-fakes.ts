import { AWAIT_LAUNCH_FLAG, LAUNCH_GO } from '../../lib/compute/agent-runtime.ts';
import type { ServerSpec } from '../../lib/compute/driver.ts';

// Stand-ins the compute host's tests launch instead of a real guest.

/**
 * A stand-in for agent/main.ts (CommonJS, run with `node -e` or as a file): started ahead of its
 * launch, waits for the host's "go" on stdin (and exits without it); reads its config (the
 * argument named agent.json), starts an "engine" (sleep) detached in its own process group in
 * the base dir, leaves the engine's pid in engine.pid, as the real agent does.
 */
export const FAKE_AGENT = `
const { spawn } = require('node:child_process');
const fs = require('node:fs');
function run() {
  const config = JSON.parse(fs.readFileSync(process.argv.find((a) => a.endsWith('agent.json')), 'utf8'));
  const engine = spawn('sleep', ['600'], { cwd: config.layout.baseDir, detached: true, stdio: 'ignore' });
  engine.unref();
  fs.writeFileSync(config.layout.baseDir + '/engine.pid', engine.pid + '\\n');
  console.log('fake agent', process.pid, 'engine', engine.pid);
  setInterval(() => {}, 1000);
}
if (process.argv.includes('${AWAIT_LAUNCH_FLAG}')) {
  let seen = '';
  process.stdin.on('data', (d) => { seen += d; });
  process.stdin.on('end', () => { if (seen.startsWith('${LAUNCH_GO}\\n')) run(); else process.exit(0); });
} else run();
`;

/** A redis server's spec whose agent would talk to nothing (the stand-in above never does). */
export function specFor(instanceId: string): ServerSpec {
  return {
    instance_id: instanceId,
    name: `db-${instanceId.slice(0, 8)}`,
    flavor: { id: '1', ram: 512, vcpus: 1 },
    volume_size_gb: 1,
    datastore: { manager: 'redis', version: '7' },
    agent: {
      instance_id: instanceId,
      datastore_manager: 'redis',
      datastore_version: '7',
      key: 'aW5zdGFuY2Uta2V5',
      guest_queue_url: 'http://127.0.0.1:9324/000000000000/guest-x',
      conductor_queue_url: 'http://127.0.0.1:9324/000000000000/conductor',
      region: 'us-east-1',
      report_interval: 10,
      endpoints: { AWS_ENDPOINT_URL_SQS: 'http://127.0.0.1:9324' },
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    },
  };
}

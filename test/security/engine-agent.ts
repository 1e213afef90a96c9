import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { launchConfirmed } from '../../agent/await-launch.ts';
import { createEngineManager, type DatastoreManager } from '../../agent/engines/index.ts';
import { AWAIT_LAUNCH_FLAG } from '../../lib/compute/agent-runtime.ts';
import type { AgentConfigFile } from '../../lib/compute/driver.ts';

// A guest agent without its queues, for the security tests: started by the compute host as the
// real agent is (same config file, same environment rules), it prepares the real engine with
// root enabled (Trove's root_on_create, password in the config's key field) and stays up, as the
// agent does. `ready` or `failed` beside it says how the prepare went (prepared.ts waits for it).

const [configPath = '', flag] = process.argv.slice(2);
// Spawned ahead of its launch (as every launch spawns its agent), it waits for the host's word,
// as agent/main.ts does: its config is written while it loads. Reading it at once failed now and
// then on a loaded machine (no such file), the agent died after the host had taken it as started,
// and the wait for `ready` ran out with neither file there.
if (flag === AWAIT_LAUNCH_FLAG && !(await launchConfirmed())) process.exit(0);
const config = JSON.parse(await readFile(configPath, 'utf8')) as AgentConfigFile;
const engine = await createEngineManager(config.datastore_manager as DatastoreManager, config.layout);
try {
  await engine.prepare({
    memoryMb: config.flavor.ram,
    databases: [{ name: 'app' }],
    users: [],
    rootPassword: config.key,
  });
  await writeFile(join(config.layout.baseDir, 'ready'), `${process.pid}\n`);
} catch (err) {
  await writeFile(join(config.layout.baseDir, 'failed'), String(err instanceof Error ? err.stack : err));
}
setInterval(() => {}, 60_000);

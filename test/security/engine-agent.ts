import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createEngineManager, type DatastoreManager } from '../../agent/engines/index.ts';
import type { AgentConfigFile } from '../../lib/compute/driver.ts';

// A guest agent without its queues, for the security tests: started by the compute host as the
// real agent is (same config file, same environment rules), it prepares the real engine with
// root enabled (Trove's root_on_create, password in the config's key field) and stays up, as the
// agent does. `ready` or `failed` beside it says how the prepare went.

const configPath = process.argv[2] ?? '';
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

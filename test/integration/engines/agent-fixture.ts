import { createEngineManager, type DatastoreManager } from '../../../agent/engines/index.ts';
import type { EngineLayout } from '../../../agent/engines/manager.ts';

// Stands in for a guest agent process: starts the engine of the given layout, says so, and idles
// until the test kills it. Usage: node --import tsx agent-fixture.ts <manager> <layout JSON>

const [manager, layout] = process.argv.slice(2);
const engine = await createEngineManager(
  manager as DatastoreManager,
  JSON.parse(layout ?? '{}') as EngineLayout,
);
await engine.start();
process.stdout.write('started\n');
setInterval(() => {}, 60_000);

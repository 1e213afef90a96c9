import { ScanCommand } from '@aws-sdk/lib-dynamodb';
import { computeDriver } from '../compute/index.ts';
import { config } from '../config.ts';
import { documents, troveTime } from '../dynamo.ts';
import { logger } from '../logger.ts';
import { updateInstance } from './repository.ts';

// Trove reads Nova's server status on every request; Troveless keeps it on the instance item and
// brings it up to date here, on a schedule: a server that stopped, crashed or vanished outside
// any workflow (a host restart, an EC2 instance stopped by hand) shows so truthfully.

interface Row {
  project_id: string;
  id: string;
  server_id?: string;
  server_status: string;
  task_status: string;
}

/** Workflows own the server status while they run; the sync leaves those instances alone. */
const BUSY = new Set(['BUILDING', 'REBUILDING', 'DELETING']);

export async function syncServerStatuses(): Promise<{ checked: number; changed: number }> {
  const driver = computeDriver();
  let checked = 0;
  let changed = 0;
  let start: Record<string, unknown> | undefined;
  do {
    const page = await documents.send(
      new ScanCommand({
        TableName: config.instancesTable,
        ProjectionExpression: 'project_id, id, server_id, server_status, task_status',
        ExclusiveStartKey: start,
      }),
    );
    for (const row of (page.Items ?? []) as Row[]) {
      if (!row.server_id || BUSY.has(row.task_status) || row.server_status === 'DELETED') continue;
      checked++;
      const server = await driver.get(row.server_id);
      // Nova answering 404 makes Trove show SHUTDOWN too.
      const status = server?.status ?? 'SHUTDOWN';
      if (status === row.server_status) continue;
      const set: Record<string, unknown> = { server_status: status };
      if (status !== 'ACTIVE') {
        set.fault = { message: server?.fault ?? `The server is ${status}.`, created: troveTime() };
      }
      const applied = await updateInstance(row.project_id, row.id, {
        set,
        remove: status === 'ACTIVE' ? ['fault'] : [],
        condition: { expression: 'server_status = :seen', values: { ':seen': row.server_status } },
      });
      if (applied) {
        changed++;
        logger.info('server status changed', { instance_id: row.id, from: row.server_status, to: status });
      }
    }
    start = page.LastEvaluatedKey;
  } while (start);
  return { checked, changed };
}

import { computeDriver } from '../compute/index.ts';
import type { InstanceItem } from '../instances/model.ts';
import { getInstance, transact, updateItem } from '../instances/repository.ts';
import { membersOf } from './members.ts';
import type { SetInput } from './switchover.ts';

// A replica set's writer endpoint (issue 12 #5): one stable address per set that leads to its
// current source, so that clients reconnecting after a promote or an eject change nothing.
// The compute driver owns it (locally a TCP forwarder of the compute host; on AWS it would be a
// Route 53 record or an NLB target, docs/architecture.md). Its id is the id of the instance the
// set was formed around; every member records it (`writer`), so each view shows it.

/**
 * The writer leads to `source_id`'s server: created when the set's first replica is ready,
 * moved by promote and eject (a step of theirs), recorded on every member. Idempotent.
 */
export async function pointWriter(input: SetInput & { source_id: string }) {
  const driver = computeDriver();
  const source = await getInstance(input.project_id, input.source_id);
  if (!source?.server_id || !driver.pointWriter) return {};
  const members = await membersOf(source);
  const id = members.find((m) => m.writer)?.writer?.id ?? source.id;
  const endpoint = await driver.pointWriter(id, source.server_id);
  const writer = { id, address: endpoint.address, port: endpoint.port };
  const stale = members.filter((m) => !sameWriter(m.writer, writer));
  if (stale.length) await transact(stale.map((m) => updateItem(m.project_id, m.id, { set: { writer } })));
  return { writer: { address: writer.address, port: writer.port } };
}

/** The set's last member is being deleted (it follows nobody, nobody follows it): its writer goes. */
export async function removeWriterOf(item: InstanceItem): Promise<void> {
  if (!item.writer || item.replica_of_id || item.replica_ids?.length) return;
  await computeDriver().removeWriter?.(item.writer.id);
}

function sameWriter(a: InstanceItem['writer'], b: NonNullable<InstanceItem['writer']>): boolean {
  return a?.id === b.id && a.address === b.address && a.port === b.port;
}

import type { EngineManager, ReplicationSource } from './engines/manager.ts';

// Trove's replication RPC methods (TROVE_API.md §10) onto the engine manager. Each is safe to
// repeat: the control plane's workflows retry steps, and the guest runs an order id once anyway.

export const REPLICATION_OPERATIONS = new Set([
  'enable_as_master',
  'attach_replica',
  'detach_replica',
  'make_read_only',
  'get_latest_txn_id',
  'wait_for_txn',
  'replication_status',
  'set_replication_mode',
]);

/** The longest a guest waits for a position to be applied (Trove's HIGH call timeout). */
const WAIT_FOR_TXN_MS = 180_000;

export async function runReplicationOperation(
  engine: EngineManager,
  method: string,
  args: Record<string, unknown>,
): Promise<unknown> {
  switch (method) {
    case 'enable_as_master':
      await engine.enableAsSource(args.account as { user: string; password: string });
      return null;
    case 'attach_replica':
      await engine.attachReplica(args.source as ReplicationSource);
      return null;
    case 'detach_replica':
      await engine.detachReplica();
      return null;
    case 'make_read_only':
      await engine.makeReadOnly(args.read_only === true);
      return null;
    case 'get_latest_txn_id':
      return engine.latestPosition();
    case 'wait_for_txn':
      await engine.waitForPosition(String(args.txn), Number(args.timeout_ms ?? WAIT_FOR_TXN_MS));
      return null;
    case 'set_replication_mode':
      await engine.setReplicationMode(args.mode === 'sync' ? 'sync' : 'async');
      return null;
    case 'replication_status':
      return (await engine.replicationStatus()) ?? null;
    default:
      throw Object.assign(new Error(`unknown operation ${method}`), { name: 'BadRequest' });
  }
}

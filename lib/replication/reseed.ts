import { randomBytes } from 'node:crypto';
import { DeleteObjectCommand } from '@aws-sdk/client-s3';
import { abortOpenUploads } from '../backups/service.ts';
import { config } from '../config.ts';
import { troveTime } from '../dynamo.ts';
import { unwrapKey } from '../guest/keys.ts';
import type { ReplicationReport } from '../guest/protocol.ts';
import { decryptWith, encryptFor } from '../guest/sealed.ts';
import type { InstanceItem } from '../instances/model.ts';
import { findInstance, getInstance, updateInstance } from '../instances/repository.ts';
import { logger } from '../logger.ts';
import { s3Client } from '../s3.ts';
import { startWorkflow } from '../workflows.ts';
import { accountOf, type ReplicationAccount } from './account.ts';
import { eventsWith } from './failover.ts';
import { connectMembers, endpointOf, membersOf } from './members.ts';
import { orderAndWait } from './orders.ts';
import { orderSnapshot, snapshotObjectKey } from './snapshot.ts';
import { faultOf } from './switchover.ts';

// The re-seed of a member that cannot follow its source (issue 12): an old source that came back
// after a failover holding writes its replicas never got (MariaDB's error 1236), or a PostgreSQL
// member whose history pg_rewind cannot bring back onto its source's. Its guest says so in its
// heartbeat (`replication.reseed_required`, agent/engines/reseed.ts); the conductor claims the
// member once per need and starts statemachines/replica-reseed.asl.yml: the source takes a
// snapshot through the backup pipeline (as for a new replica, lib/replication/snapshot.ts), the
// member restores it over its data dir (keeping its own configuration, TLS and role), follows
// the source, and is ACTIVE again. Its diverged writes are discarded; the set's events say so.
// The member shows the task RESEEDING (Trove's API: BUILD, as a replica being seeded from its
// source's snapshot shows at create); a failed step ends it in Trove's BUILDING_ERROR_REPLICA
// (ERROR) with a fault naming the step.

export type ReseedNeed = NonNullable<ReplicationReport['reseed_required']>;

export interface ReseedFacts {
  need: ReseedNeed | undefined;
  /** The member's source in the records (undefined: the records say it is a source). */
  replicaOf: string | undefined;
  task: string;
  /** The need the last re-seed of this member was started for. */
  reseededFor: number | undefined;
  source: { task: string; replicaOf: string | undefined } | undefined;
}

export type ReseedDecision = { start: true } | { start: false; why: string };

const SETTLED = ['NONE', 'RESTART_REQUIRED'];

/** The pure decision: is this member re-seeded now? */
export function decideReseed(f: ReseedFacts): ReseedDecision {
  if (!f.need) return { start: false, why: 'the member follows its source' };
  if (f.reseededFor === f.need.since) return { start: false, why: 'a re-seed was started for this need' };
  // A failover still under way records the old source as a replica only at its end.
  if (!f.replicaOf) return { start: false, why: 'the records do not make it a replica' };
  if (!SETTLED.includes(f.task)) return { start: false, why: `the member is busy (${f.task})` };
  if (!f.source) return { start: false, why: 'its source is gone' };
  if (f.source.replicaOf) return { start: false, why: 'its source is itself a replica now' };
  if (!SETTLED.includes(f.source.task)) return { start: false, why: `its source is busy (${f.source.task})` };
  return { start: true };
}

/** The re-seed's execution: one per member and need, so a repeated start cannot run it twice. */
export function reseedExecution(memberId: string, since: number): string {
  return `reseed-${memberId}-${since}`;
}

/**
 * A heartbeat said the member needs a re-seed: claim it (one conditional write: the member is
 * settled, follows this source, and was not claimed for this need) and start the workflow.
 */
export async function considerReseed(member: InstanceItem, need: ReseedNeed | undefined): Promise<boolean> {
  const source = member.replica_of_id
    ? await getInstance(member.project_id, member.replica_of_id)
    : undefined;
  const decision = decideReseed({
    need,
    replicaOf: member.replica_of_id,
    task: member.task_status,
    reseededFor: member.reseed?.since,
    source: source && { task: source.task_status, replicaOf: source.replica_of_id },
  });
  if (!decision.start || !need || !source) {
    if (need) logger.info('no re-seed yet', { instance_id: member.id, why: decision.start || decision.why });
    return false;
  }
  const execution = reseedExecution(member.id, need.since);
  const claimed = await updateInstance(member.project_id, member.id, {
    set: {
      task_status: 'RESEEDING',
      reseed: { since: need.since, source_id: source.id, execution, reason: need.reason },
    },
    remove: ['fault'],
    condition: {
      expression:
        'task_status IN (:none, :rr) AND replica_of_id = :source AND (attribute_not_exists(reseed) OR reseed.since <> :since)',
      values: { ':none': 'NONE', ':rr': 'RESTART_REQUIRED', ':source': source.id, ':since': need.since },
    },
  });
  if (!claimed) return false;
  logger.warn('re-seeding a member that cannot follow its source', {
    instance_id: member.id,
    source_id: source.id,
    reason: need.reason,
  });
  try {
    await startWorkflow('replica-reseed', execution, {
      project_id: member.project_id,
      instance_id: member.id,
      source_id: source.id,
    });
  } catch (err) {
    // Not started: the member is released (the next heartbeat asks again).
    await updateInstance(member.project_id, member.id, {
      set: { task_status: member.task_status },
      remove: ['reseed'],
      condition: { expression: 'task_status = :t', values: { ':t': 'RESEEDING' } },
    });
    throw err;
  }
  return true;
}

export interface ReseedInput {
  project_id: string;
  instance_id: string;
  source_id: string;
}

interface SealedReseed {
  restore: { bucket: string; key: string; data_key: string }[];
  account: ReplicationAccount;
}

/** The member and its source, while the member is still being re-seeded (a delete ends it). */
async function parties(input: ReseedInput): Promise<{ member: InstanceItem; source: InstanceItem }> {
  const member = await getInstance(input.project_id, input.instance_id);
  if (!member) throw new Error(`instance ${input.instance_id} is gone`);
  if (member.task_status !== 'RESEEDING')
    throw new Error(`the re-seed of ${member.id} was interrupted (its task is ${member.task_status})`);
  const source = await getInstance(input.project_id, input.source_id);
  if (!source) throw new Error(`the source ${input.source_id} is gone`);
  return { member, source };
}

async function sealedOf(member: InstanceItem): Promise<SealedReseed> {
  if (!member.sealed_reseed) throw new Error(`instance ${member.id} has no re-seed planned`);
  return decryptWith(await unwrapKey(member.wrapped_key), member.sealed_reseed) as SealedReseed;
}

/** Records on every member of the set (each shows the set's events). */
async function recordEvent(
  member: InstanceItem,
  sourceId: string,
  event: 'reseed' | 'reseeded' | 'reseed_failed',
  message: string,
) {
  for (const m of await membersOf(member).catch(() => [member])) {
    const item = m.id === member.id ? await getInstance(m.project_id, m.id) : m;
    if (!item) continue;
    await updateInstance(item.project_id, item.id, {
      set: {
        replication_events: eventsWith(item, {
          time: troveTime(),
          event,
          term: item.replication_term ?? 0,
          member: member.id,
          source: sourceId,
          message,
        }),
      },
    });
  }
}

/**
 * Step 1: the snapshot's object and data key, sealed with the member's own key (the same for a
 * retried step), and the set's members may reach each other. The set's event says what happens.
 */
export async function planReseed(input: ReseedInput) {
  const { member, source } = await parties(input);
  if (!member.sealed_reseed) {
    const account = await accountOf(member);
    if (!account) throw new Error(`instance ${member.id} has no replication account`);
    const sealed: SealedReseed = {
      restore: [
        {
          bucket: config.backupBucket,
          key: snapshotObjectKey(member.project_id, source.id, member.id),
          data_key: randomBytes(32).toString('base64'),
        },
      ],
      account,
    };
    await updateInstance(member.project_id, member.id, {
      set: { sealed_reseed: encryptFor(await unwrapKey(member.wrapped_key), sealed) },
      condition: { expression: 'task_status = :t', values: { ':t': 'RESEEDING' } },
    });
    await recordEvent(
      member,
      source.id,
      'reseed',
      `${member.id} cannot follow ${source.id} (${member.reseed?.reason ?? 'its history diverged'}): it is re-seeded from a snapshot of ${source.id}; the writes it holds that the set never got are discarded.`,
    );
  }
  await connectMembers(await membersOf(member));
  return {};
}

/** Step 2: the source's guest streams the snapshot (Trove's get_replication_snapshot). */
export async function snapshotForReseed(input: ReseedInput & { task_token: string; execution_id?: string }) {
  const { member, source } = await parties(input);
  const sealed = await sealedOf(member);
  const [object] = sealed.restore;
  if (!object) throw new Error(`instance ${member.id} has no snapshot planned`);
  return orderSnapshot(source, member.id, object, sealed.account, {
    task_token: input.task_token,
    execution_id: input.execution_id,
    tag: `reseed:${member.id}`,
  });
}

/** Step 3: the member restores the snapshot over its data and follows the source. */
export async function restoreMember(
  input: ReseedInput & {
    snapshot: { checksum: string; size_bytes: number };
    task_token: string;
    execution_id?: string;
  },
) {
  const { member, source } = await parties(input);
  const sealed = await sealedOf(member);
  return orderAndWait(
    member,
    'reseed_replica',
    {
      snapshot_checksum: input.snapshot.checksum,
      ...(member.replication_term ? { term: member.replication_term } : {}),
    },
    {
      task_token: input.task_token,
      execution_id: input.execution_id,
      secrets: { restore: sealed.restore, source: { ...endpointOf(source), ...sealed.account } },
    },
  );
}

/**
 * Whatever happened: the snapshot object goes, and an upload of it still open (a snapshot step
 * that gave up on a source still streaming) is aborted. Safe to repeat; the member may be gone.
 */
export async function removeReseedSnapshot(input: ReseedInput) {
  const key = snapshotObjectKey(input.project_id, input.source_id, input.instance_id);
  await s3Client().send(new DeleteObjectCommand({ Bucket: config.backupBucket, Key: key }));
  await abortOpenUploads({ bucket: config.backupBucket, key });
  return {};
}

/** Step 4: the member is ACTIVE again, a replica of the source; the set's event says so. */
export async function finishReseed(input: ReseedInput) {
  const { member, source } = await parties(input);
  await updateInstance(member.project_id, member.id, {
    set: { task_status: 'NONE' },
    remove: ['fault', 'sealed_reseed'],
    condition: { expression: 'task_status = :t', values: { ':t': 'RESEEDING' } },
  });
  await recordEvent(
    member,
    source.id,
    'reseeded',
    `${member.id} was re-seeded from a snapshot of ${source.id} and follows it; its diverged writes were discarded.`,
  );
  return {};
}

/** A step failed: the member ends in ERROR with a fault naming the step; the set's event says so. */
export async function reseedFailed(
  input: ReseedInput & { failed: { step: string }; error?: { Error?: string; Cause?: string } },
) {
  const fault = faultOf(input.error ?? { Error: 'unknown error' }, `reseed ${input.failed.step}`);
  const ended = await updateInstance(input.project_id, input.instance_id, {
    set: { task_status: 'BUILDING_ERROR_REPLICA', fault },
    remove: ['sealed_reseed'],
    condition: { expression: 'task_status = :t', values: { ':t': 'RESEEDING' } },
  });
  // A member deleted meanwhile has nothing to show; the set still records it.
  const member = (await findInstance(input.instance_id)) ?? undefined;
  if (member && member.project_id === input.project_id)
    await recordEvent(member, input.source_id, 'reseed_failed', fault.message).catch(() => undefined);
  return { ended };
}

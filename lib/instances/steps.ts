import { createHash } from 'node:crypto';
import { removeStrayBackupObjects } from '../backups/strays.ts';
import { ImageNotFound } from '../compute/driver.ts';
import { computeDriver } from '../compute/index.ts';
import { isWaitTimeout, silenceFault } from '../conductor/faults.ts';
import { deliverAnswer, forgetWaitingTask, registerWaitingTask } from '../conductor/tasks.ts';
import { config } from '../config.ts';
import { getConfiguration } from '../configurations/repository.ts';
import { guestRules } from '../configurations/service.ts';
import { troveTime } from '../dynamo.ts';
import { deleteDoorbell } from '../guest/doorbell.ts';
import { unwrapKey } from '../guest/keys.ts';
import {
  beginOrder,
  conductorQueueUrl,
  createGuestQueue,
  deleteGuestQueue,
  operationIdOf,
} from '../guest/queues.ts';
import { logger } from '../logger.ts';
import { Phases } from '../phases.ts';
import { endpointOf } from '../replication/members.ts';
import { settleSourceMode } from '../replication/mode.ts';
import { removeReseedSnapshot } from '../replication/reseed.ts';
import { removeSnapshot } from '../replication/snapshot.ts';
import { pointWriter, removeWriterOf } from '../replication/writer.ts';
import type { InstanceItem } from './model.ts';
import { markBuilt } from './ready.ts';
import { deleteInstanceItem, getInstance, updateInstance } from './repository.ts';

// The steps of the instance workflows (statemachines/instance-*.asl.yml). Each is idempotent:
// a step the state machine retries, or runs again after a crash, changes nothing twice.

export interface StepInput {
  project_id: string;
  instance_id: string;
}

/** Thrown when the instance is gone; workflows treat it as the end of the road, not as a retry. */
export class InstanceGone extends Error {
  override name = 'Troveless.InstanceGone';
}

async function instanceOf(input: StepInput): Promise<InstanceItem> {
  // By its key (the project is the step's input): one read, not the by-id index and a read.
  const item = await getInstance(input.project_id, input.instance_id);
  if (!item) throw new InstanceGone(`instance ${input.instance_id} is gone`);
  return item;
}

export async function prepareGuestQueue(input: StepInput) {
  await instanceOf(input);
  return { guest_queue_url: await createGuestQueue(input.instance_id) };
}

/**
 * Neutron's port, made beside the guest queue: the addresses the server will have, so that the
 * certificate is issued while the server launches (the launch takes that port). None when the
 * driver cannot know them before the launch (EC2): the certificate then follows the launch.
 */
export async function createPort(input: StepInput) {
  const item = await instanceOf(input);
  const driver = computeDriver();
  if (!driver.createPort) return { addresses: [] };
  const addresses = await driver.createPort(item.id, item.datastore.manager);
  return { addresses: addresses.map((a) => a.address) };
}

/** Nova's boot: the compute driver starts the guest with its config; the same id yields the same server. */
export async function launchServer(input: StepInput & { guest_queue_url: string }) {
  // Each phase's time, logged: what the step adds to the compute host's own launch.
  const phases = new Phases();
  const item = await phases.time('read', () => instanceOf(input));
  const key = await phases.time('key', () => unwrapKey(item.wrapped_key));
  const conductorUrl = await phases.time('conductor-queue', () => conductorQueueUrl());
  const server = await phases.time('launch', () =>
    computeDriver().launch({
      instance_id: item.id,
      name: item.name,
      // Items created before vcpus were recorded were launched with one vCPU, and keep it.
      flavor: { id: item.flavor_id, ram: item.flavor_ram, vcpus: item.flavor_vcpus ?? 1 },
      volume_size_gb: item.volume_size,
      datastore: { manager: item.datastore.manager, version: item.datastore.version },
      access: item.access,
      agent: {
        instance_id: item.id,
        datastore_manager: item.datastore.manager,
        datastore_version: item.datastore.version,
        key: key.toString('base64'),
        guest_queue_url: input.guest_queue_url,
        conductor_queue_url: conductorUrl,
        region: process.env.AWS_REGION ?? 'us-east-1',
        report_interval: config.reportIntervalSeconds,
        metrics_samples_per_write: config.metricsSamplesPerWrite,
        ...(config.doorbellUrl
          ? {
              doorbell: {
                url: config.doorbellUrl,
                busy_seconds: config.doorbellBusySeconds,
                rest_poll_seconds: config.doorbellRestPollSeconds,
              },
            }
          : {}),
      },
    }),
  );
  await phases.time('record', () =>
    updateInstance(item.project_id, item.id, {
      set: { server_id: server.id, server_status: server.status, addresses: server.addresses },
    }),
  );
  logger.info('server launched', { instance_id: item.id, server_id: server.id, phases: `${phases}` });
  return { server_id: server.id };
}

export interface GuestRequestInput extends StepInput {
  method: string;
  task_token?: string;
  /** The waiting execution: with the method, it names the order across retries of the step. */
  execution_id?: string;
  /** Names the order instead of the method when one execution sends a method twice (a resize's revert). */
  step?: string;
  /** The order's arguments (never secrets: they are in the workflow's history); prepare builds its own. */
  args?: Record<string, unknown>;
}

/**
 * Sends an order to the guest; with a task token the workflow waits for the guest's answer. A
 * retried step sends the same operation id (the guest runs it once) and registers its new token,
 * so the answer reaches it; an answer that came back between two attempts is handed over here.
 */
export async function sendGuestRequest(input: GuestRequestInput) {
  const phases = new Phases();
  const item = await phases.time('read', () => instanceOf(input));
  const operationId = operationIdOf(input.step ?? input.method, input.execution_id, input.task_token);
  // The key, the registration of the waiting step and prepare's arguments are independent: side
  // by side (a create waits on this step before its guest can start preparing).
  // (An answer already kept is handed over even if the arguments could no longer be made.)
  const args = phases.time('args', () => argsOf(item, input));
  args.catch(() => {});
  // The order's record and its queue's URL too (lib/guest/queues.ts): awaited when it is sent.
  const order = beginOrder(item.id, input.method, input.task_token, operationId);
  const [key, waiting] = await Promise.all([
    phases.time('key', () => unwrapKey(item.wrapped_key)),
    input.task_token
      ? phases.time('register', () =>
          registerWaitingTask(
            item.project_id,
            item.id,
            operationId,
            input.task_token as string,
            input.method,
            item.waiting_tasks !== undefined,
          ),
        )
      : undefined,
  ]);
  if (input.task_token) {
    if (!waiting) throw new InstanceGone(`instance ${input.instance_id} is gone`);
    if (waiting.answer) {
      await deliverAnswer(input.task_token, input.method, waiting.answer);
      await forgetWaitingTask(item.project_id, item.id, operationId, input.task_token);
      return { operation_id: operationId };
    }
  }
  const orderArgs = await args;
  await phases.time('send', () => order.send(key, orderArgs));
  logger.info('guest order sent', { instance_id: item.id, method: input.method, phases: `${phases}` });
  return { operation_id: operationId };
}

/** An order's arguments: the input's, or for prepare what the guest needs to build its engine. */
async function argsOf(item: InstanceItem, input: GuestRequestInput): Promise<Record<string, unknown>> {
  if (input.method !== 'prepare') return input.args ?? {};
  const [overrides, replica] = await Promise.all([overridesOf(item), replicaArgsOf(item)]);
  return {
    sealed: item.sealed_prepare,
    // The instance's TLS key and certificate (lib/instances/certificate.ts), sealed likewise.
    sealed_tls: item.sealed_tls,
    memory_mb: item.flavor_ram,
    volume_size_gb: item.volume_size,
    overrides,
    ...replica,
    // Trove's cluster_config: a cluster member starts in its engine's cluster mode.
    ...(item.cluster_id ? { cluster_config: { id: item.cluster_id, instance_type: 'member' } } : {}),
  };
}

export async function markReady(input: StepInput) {
  const item = await instanceOf(input);
  // The users' passwords have reached the engine: nothing keeps them any longer. The conductor
  // may have ended a plain instance's build already (ready.ts).
  await markBuilt(item);
  await removeSnapshot(item);
  // A replica that follows now: in a sync set it acknowledges, and its source may wait for it.
  if (item.replica_of_id) {
    await settleSourceMode(item.project_id, item.replica_of_id, item);
    // The set's writer endpoint: made with its first replica, recorded on each new member. The
    // replica is built whatever happens to it: a promote or eject points it again.
    await pointWriter({ project_id: item.project_id, source_id: item.replica_of_id }).catch((err: unknown) =>
      logger.warn('writer endpoint not pointed', { instance_id: item.id, error: err as Error }),
    );
  }
  return {};
}

/**
 * Ends a running task (REBOOTING, or an admin's REBUILDING) whatever its outcome, as Trove resets
 * the task in `finally`.
 */
export async function endTask(input: StepInput & { error?: { Error?: string; Cause?: string } }) {
  const item = await instanceOf(input);
  const set: Record<string, unknown> = { task_status: 'NONE' };
  if (input.error)
    set.fault = isWaitTimeout(input.error)
      ? silenceFault(item, input.error, item.task_status === 'REBUILDING' ? 'rebuild' : 'restart')
      : faultOf(input.error);
  // Only our own task is ended: a delete that started meanwhile keeps its DELETING.
  await updateInstance(item.project_id, item.id, {
    set,
    condition: {
      expression: 'task_status IN (:rebooting, :rebuilding)',
      values: { ':rebooting': 'REBOOTING', ':rebuilding': 'REBUILDING' },
    },
  });
  return {};
}

/** A create that cannot finish ends in ERROR with a fault; the server is left for delete to clean. */
export async function failBuild(input: StepInput & { error: { Error?: string; Cause?: string } }) {
  const item = await instanceOf(input);
  // A guest that never started, went silent, or never finished prepare: Trove's GA timeout,
  // with what was last heard from it.
  const timedOut = isWaitTimeout(input.error);
  const fromGuest = input.error.Error?.startsWith('Guest.') ?? false;
  await updateInstance(item.project_id, item.id, {
    set: {
      task_status: timedOut || fromGuest ? 'BUILDING_ERROR_TIMEOUT_GA' : 'BUILDING_ERROR_SERVER',
      service_status: timedOut ? 'guestagent error' : fromGuest ? 'failed to spawn' : item.service_status,
      fault: timedOut ? silenceFault(item, input.error, 'prepare') : faultOf(input.error),
    },
    remove: ['sealed_prepare', 'sealed_tls'],
  });
  await removeSnapshot(item);
  return {};
}

export function faultOf(error: { Error?: string; Cause?: string }) {
  return {
    message: causeMessage(error.Cause) ?? error.Error ?? 'The operation failed.',
    created: troveTime(),
    details: [error.Error, error.Cause].filter(Boolean).join(': '),
  };
}

/** Lambda failures arrive as a JSON Cause ({"errorMessage": ...}); guest failures as plain text. */
function causeMessage(cause: string | undefined): string | undefined {
  if (!cause) return undefined;
  try {
    const parsed = JSON.parse(cause) as { errorMessage?: string };
    return parsed.errorMessage ?? cause;
  } catch {
    return cause;
  }
}

export async function terminateServer(input: StepInput) {
  const item = await instanceOf(input);
  // No orphaned listener or address: the last member of a set takes its writer endpoint along.
  await removeWriterOf(item);
  const driver = computeDriver();
  if (item.server_id) await driver.terminate(item.server_id);
  // A launch that finished after this delete read the item (a build deleted by force, its
  // workflow stopped while LaunchServer ran) left a server the item does not name: found by the
  // instance id it was launched for, it goes too.
  const late = await driver.findByInstance(item.id);
  if (late) await driver.terminate(late.id);
  // A build that never launched leaves its port (the server's delete takes it otherwise).
  await driver.deletePort?.(item.id);
  await updateInstance(item.project_id, item.id, { set: { server_status: 'DELETED' } });
  return {};
}

/**
 * Trove's mgmt reboot's Nova step: the instance's server reboots (locally its agent and engine
 * stop and the agent starts again; on EC2 RebootInstances). The workflow then asks the guest to
 * restart its engine, which it answers once the engine is healthy again.
 */
export async function rebootServer(input: StepInput) {
  const item = await instanceOf(input);
  if (!item.server_id) throw new Error(`Instance ${item.id} has no server to reboot.`);
  await computeDriver().reboot(item.server_id);
  return {};
}

/**
 * Trove's mgmt rebuild's Nova step. `check_only` (the rebuild's first state) only makes sure the
 * image exists, before the guest is asked to stop anything: an unknown image ends the rebuild
 * with Nova's message and the instance as it was. Otherwise the server gets the image with its
 * data volume kept (locally a fresh copy of the agent bundle, started on the remounted volume;
 * on EC2 a replace-root-volume task, RebuildPending until it is done); the workflow then asks
 * the new guest to restart its engine, which it answers once the engine is healthy on the data.
 */
export async function rebuildServer(
  input: StepInput & { image_id: string; check_only?: boolean; execution_id?: string },
) {
  const item = await instanceOf(input);
  if (!item.server_id) throw new Error(`Instance ${item.id} has no server to rebuild.`);
  const driver = computeDriver();
  if (input.check_only) {
    if (!(await driver.imageExists(input.image_id))) throw new ImageNotFound(input.image_id);
    return {};
  }
  // One request per execution: EC2 answers a retried call with the task the first one started.
  const token = input.execution_id
    ? createHash('sha256').update(input.execution_id).digest('hex').slice(0, 64)
    : undefined;
  await driver.rebuild(item.server_id, input.image_id, token);
  return {};
}

export async function removeGuestQueue(input: StepInput) {
  // The doorbell's item goes with the queue it rang for (it would expire, but not for hours).
  await Promise.all([deleteGuestQueue(input.instance_id), deleteDoorbell(input.instance_id)]);
  return {};
}

/** The last step of delete: the instance item (and with it the wrapped key) goes. */
export async function forgetInstance(input: StepInput) {
  // The server is gone: whatever its guest stored that no backup record owns can go too.
  await removeStrayBackupObjects(input.project_id, input.instance_id);
  // A member deleted during its re-seed: the snapshot its source took for it (under the source's
  // prefix) goes now; the re-seed's own last step removes it again once its waiting step ends.
  const item = await getInstance(input.project_id, input.instance_id);
  if (item?.reseed)
    await removeReseedSnapshot({
      project_id: item.project_id,
      instance_id: item.id,
      source_id: item.reseed.source_id,
    });
  await deleteInstanceItem(input.project_id, input.instance_id);
  return {};
}

export async function failDelete(input: StepInput & { error: { Error?: string; Cause?: string } }) {
  const item = await instanceOf(input);
  await updateInstance(item.project_id, item.id, {
    set: { server_status: 'ERROR', fault: faultOf(input.error) },
  });
  return {};
}

/** A replica's prepare: its source's endpoint and the checksum of the snapshot it restores. */
async function replicaArgsOf(item: InstanceItem) {
  if (!item.replica_of_id) return {};
  const source = await getInstance(item.project_id, item.replica_of_id);
  if (!source) throw new Error(`the source ${item.replica_of_id} of replica ${item.id} is gone`);
  return { replica_of: endpointOf(source), snapshot_checksum: item.replication_snapshot?.checksum };
}

/** The attached group's values and the rules that say which need a restart, for prepare. */
async function overridesOf(item: InstanceItem) {
  if (!item.configuration_id) return undefined;
  const group = await getConfiguration(item.project_id, item.configuration_id);
  return { values: group.values, rules: guestRules(item.datastore.manager) };
}

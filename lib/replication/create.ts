import { randomBytes, randomUUID } from 'node:crypto';
import { TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import { config } from '../config.ts';
import { configurationForVersion } from '../configurations/repository.ts';
import { troveTime } from '../dynamo.ts';
import { BadRequest, NotFound, OverLimit, Unauthorized, UnprocessableEntity } from '../errors.ts';
import { newGuestKey, unwrapKey, wrapKey } from '../guest/keys.ts';
import { encryptFor } from '../guest/sealed.ts';
import { startBuild } from '../instances/build.ts';
import type { InstanceItem } from '../instances/model.ts';
import { assertCanAct, configurationIdOf } from '../instances/operations.ts';
import { getInstance, putNewInstances } from '../instances/repository.ts';
import type { CreateInstanceRequest } from '../instances/schemas.ts';
import { quotaChanges, quotaExceededMessage } from '../quotas.ts';
import { accountOf, newAccount, sealAccount } from './account.ts';
import { assertModeSupported, modeOf } from './mode.ts';
import { snapshotObjectKey } from './snapshot.ts';

/**
 * Trove's create with `replica_of` (TROVE_API.md §2.1, §9.2): `replica_count` new instances of the
 * source's flavor, volume and datastore version, each seeded from a fresh snapshot of the source
 * (taken by its create workflow through the backup pipeline) and then following it. The checks
 * are Trove's, in its order; the replicas, their quota and the source's list of replicas are
 * written in one transaction, or nothing is.
 */
export async function createReplicas(projectId: string, req: CreateInstanceRequest): Promise<InstanceItem> {
  const sourceId = configurationIdOf(req.replica_of ?? '');
  if (req.flavorRef !== undefined) throw new BadRequest('Cannot specify flavor when creating replicas.');
  if (req.datastore && Object.keys(req.datastore).length)
    throw new BadRequest('Cannot specify datastore when creating replicas.');
  if (req.volume) throw new BadRequest('Cannot specify volume when creating replicas.');
  if (req.locality) throw new BadRequest('Cannot specify locality when creating replicas.');
  if (req.nics?.[0]?.ip_address) throw new BadRequest('Cannot specify IP address when creating replicas.');
  if (req.databases?.length || req.users?.length)
    throw new BadRequest('Cannot create a replica with users or databases.');
  if (req.modules?.length) throw new BadRequest('Modules are not supported.');
  const count = req.replica_count ?? 1;
  if (count > config.maxReplicaCount) {
    throw new BadRequest(
      `Validation error: instance['replica_count'] ${count} is greater than the maximum of ${config.maxReplicaCount}`,
    );
  }
  const source = await getInstance(projectId, sourceId);
  if (!source) throw new NotFound(`Resource ${sourceId} cannot be found.`);
  // Trove raises Forbidden here, which its API answers with 401.
  if (source.replica_of_id) throw new Unauthorized(`Cannot create a replica of a replica ${sourceId}`);
  assertCanAct(source);
  // The first replica's body may choose the set's mode; a set that exists changes it by PUT.
  const mode = req.replication?.mode ?? modeOf(source);
  assertModeSupported(source.datastore.manager, mode);
  const failover = req.replication?.failover ?? source.replication_failover ?? 'manual';
  if (req.replication?.mode && source.replica_ids?.length && mode !== modeOf(source))
    throw new BadRequest(
      `The replica set of ${source.id} replicates in ${modeOf(source)} mode: change it with PUT /instances/${source.id}.`,
    );

  let configurationId: string | undefined;
  if (req.configuration) {
    const group = await configurationForVersion(projectId, configurationIdOf(req.configuration), {
      id: source.datastore.version_id,
      name: source.datastore.version,
    });
    configurationId = group.id;
  }

  const deltas = { instances: count, ram: source.flavor_ram * count, volumes: source.volume_size * count };
  const quota = await quotaChanges(projectId, deltas);
  if (quota.exceeded.length) throw new OverLimit(quotaExceededMessage(quota.exceeded));

  // The set's account: the source's if it already feeds replicas, else a new one it will get.
  const account = (await accountOf(source)) ?? newAccount();
  const sourceKey = await unwrapKey(source.wrapped_key);
  const now = troveTime();
  const replicas: InstanceItem[] = [];
  for (let i = 1; i <= count; i++) {
    const key = newGuestKey();
    const id = randomUUID();
    replicas.push({
      project_id: projectId,
      id,
      name: count > 1 ? `${req.name}-${i}` : req.name,
      created: now,
      updated: now,
      region: source.region,
      flavor_id: source.flavor_id,
      flavor_ram: source.flavor_ram,
      flavor_vcpus: source.flavor_vcpus,
      volume_size: source.volume_size,
      datastore: { ...source.datastore },
      task_status: 'BUILDING',
      service_status: 'new',
      service_status_updated: now,
      server_status: 'BUILD',
      wrapped_key: await wrapKey(key),
      // The snapshot's data key and the account reach the replica's prepare sealed with its key.
      sealed_prepare: encryptFor(key, {
        databases: [],
        users: [],
        restore: [
          {
            bucket: config.backupBucket,
            key: snapshotObjectKey(projectId, source.id, id),
            checksum: '',
            data_key: randomBytes(32).toString('base64'),
          },
        ],
        account,
      }),
      sealed_replication: sealAccount(key, account),
      access: req.access
        ? { is_public: req.access.is_public ?? false, allowed_cidrs: req.access.allowed_cidrs }
        : source.access,
      availability_zone: req.availability_zone,
      configuration_id: configurationId,
      replica_of_id: source.id,
      replication_mode: mode,
      replication_failover: failover,
      ...(source.replication_term ? { replication_term: source.replication_term } : {}),
    });
  }

  const sealedSource = source.sealed_replication ?? sealAccount(sourceKey, account);
  try {
    await putNewInstances(replicas, quota, [
      {
        Update: {
          TableName: config.instancesTable,
          Key: { project_id: projectId, id: source.id },
          UpdateExpression:
            'SET replica_ids = list_append(if_not_exists(replica_ids, :none), :ids), sealed_replication = :sealed, updated = :now, replication_mode = :mode, replication_failover = :failover',
          // Still a source that can act, with the account its replicas were given.
          ConditionExpression:
            'attribute_exists(id) AND attribute_not_exists(replica_of_id) AND task_status IN (:t1, :t2)' +
            ' AND (attribute_not_exists(sealed_replication) OR sealed_replication = :sealed)',
          ExpressionAttributeValues: {
            ':none': [],
            ':ids': replicas.map((r) => r.id),
            ':sealed': sealedSource,
            ':now': now,
            ':mode': mode,
            ':failover': failover,
            ':t1': 'NONE',
            ':t2': 'RESTART_REQUIRED',
          },
        },
      },
    ]);
  } catch (err) {
    if (!(err instanceof TransactionCanceledException)) throw err;
    // The source's condition: it is no longer a source that can act.
    throw new UnprocessableEntity(
      `Instance ${source.id} is not currently available for an action to be performed.`,
    );
  }

  for (const replica of replicas) await startBuild(replica, { replica_of: source.id });
  // Trove answers with the view of the last replica.
  return replicas[replicas.length - 1] as InstanceItem;
}

import { randomUUID } from 'node:crypto';
import { restoreChain } from '../backups/service.ts';
import { getFlavor, resolveDatastoreVersion } from '../catalog/index.ts';
import { datastoreRefOf } from '../catalog/types.ts';
import { config } from '../config.ts';
import { configurationForVersion } from '../configurations/repository.ts';
import { hostOrAny } from '../databases/rules/index.ts';
import { requestsFor } from '../databases/schemas.ts';
import { troveTime } from '../dynamo.ts';
import { BadRequest, Forbidden, NotImplemented, OverLimit } from '../errors.ts';
import { newGuestKey, wrapKey } from '../guest/keys.ts';
import { encryptFor } from '../guest/sealed.ts';
import { logger } from '../logger.ts';
import { modulesForCreate } from '../modules/orders.ts';
import { Phases } from '../phases.ts';
import { quotaChanges, quotaExceededMessage, quotaUsage } from '../quotas.ts';
import { createReplicas } from '../replication/create.ts';
import { assertModeSupported } from '../replication/mode.ts';
import { allInOrder } from '../settled.ts';
import { validate } from '../validation.ts';
import { startBuild } from './build.ts';
import type { InstanceItem } from './model.ts';
import { configurationIdOf } from './operations.ts';
import { putNewInstances } from './repository.ts';
import type { CreateInstanceRequest } from './schemas.ts';

/**
 * Trove's Instance.create: check the request against the catalog and the quotas, write the
 * instance (task BUILDING, service status new) together with its quota usage, then start the
 * create workflow. Nothing is written when a check fails.
 */
export async function createInstance(
  projectId: string,
  req: CreateInstanceRequest,
  isAdmin = false,
): Promise<InstanceItem> {
  if (req.replica_of !== undefined) return createReplicas(projectId, req);
  if (req.replica_count !== undefined && req.replica_count > 1) {
    throw new BadRequest(
      `Replica count only valid when creating replicas. Cannot create ${req.replica_count} instances.`,
    );
  }
  // Each phase's time, logged: what the create request itself costs (the provision bench's POST).
  const phases = new Phases();
  // The project's modules and quota usage do not depend on the catalog: read beside it (a create
  // waits on every read), and checked after it, in Trove's order.
  const modulesFor = modulesForCreate(
    { projectId, isAdmin },
    (req.modules ?? []).map((m) => m.id),
  );
  const usage = quotaUsage(projectId);
  usage.catch(() => {});
  // The flavor and the datastore version side by side, failing in Trove's order: the flavor first.
  const [flavor, { datastore, version }] = await phases.time('catalog', () =>
    allInOrder([getFlavor(req.flavorRef), resolveDatastoreVersion(req.datastore)] as const),
  );
  assertModeSupported(version.manager, req.replication?.mode);
  if (!req.volume) throw new BadRequest('Volume size was not specified.');
  const size = req.volume.size;
  if (size > config.maxAcceptedVolumeSize) {
    throw new OverLimit(
      `Volume 'size' cannot exceed maximum of ${config.maxAcceptedVolumeSize} GB, ${size} cannot be accepted.`,
    );
  }
  const databases = req.databases ?? [];
  const users = req.users ?? [];
  const known = new Set(databases.map((d) => d.name));
  for (const user of users) {
    for (const db of user.databases ?? []) {
      if (!known.has(db.name)) {
        throw new BadRequest(
          `Database '${db.name}' of user '${user.name}' is not in the instance's databases.`,
        );
      }
    }
  }
  if ((databases.length || users.length) && version.manager === 'redis') {
    throw new NotImplemented(`Users and databases are not supported for datastore ${datastore.name}.`);
  }
  // The same per-engine rules as the database and user routes, before anything is written.
  const rules = requestsFor(version.manager);
  if (databases.length) validate(rules.CreateDatabasesRequest, { databases });
  if (users.length) validate(rules.CreateUsersRequest, { users });
  for (const user of users) user.host = hostOrAny(user.host);

  // Trove's restorePoint: the backup (and its parents) become the new instance's data.
  let restore: Awaited<ReturnType<typeof restoreChain>> | undefined;
  if (req.restorePoint) {
    restore = await restoreChain(
      projectId,
      req.restorePoint.backupRef.split('/').filter(Boolean).pop() ?? '',
    );
    const last = restore[restore.length - 1]?.item;
    if (last && last.datastore.type !== datastore.name) {
      throw new BadRequest(
        `Backup ${last.id} is of datastore ${last.datastore.type}, not ${datastore.name}.`,
      );
    }
    // A data dir runs on the version that wrote it: a backup of another version is refused here
    // rather than shown under a version it does not run (an upgrade after the restore moves it).
    if (last && last.datastore.version_id !== version.id) {
      throw new BadRequest(
        `Backup ${last.id} is of datastore version ${last.datastore.version}, not ${version.name}.`,
      );
    }
    const bytes = restore.reduce((sum, o) => sum + (o.item.size_bytes ?? 0), 0);
    if (bytes > size * 1024 ** 3)
      throw new Forbidden(`Backup is too large for the volume size of ${size} GB.`);
  }

  // A group given at create is applied by prepare, before the instance is first ACTIVE.
  let configurationId: string | undefined;
  if (req.configuration) {
    const group = await configurationForVersion(projectId, configurationIdOf(req.configuration), version);
    configurationId = group.id;
  }

  const now = troveTime();
  // Modules named in the request and the auto-apply ones: prepare applies them (lib/modules).
  const deltas: Record<'instances' | 'ram' | 'volumes', number> = {
    instances: 1,
    ram: flavor.ram,
    volumes: size,
  };
  // A bad module is refused before the quota.
  const [modules, quota] = await phases.time('modules-quota', () =>
    allInOrder([modulesFor(datastore.id, version.id, now), quotaChanges(projectId, deltas, usage)] as const),
  );
  if (quota.exceeded.length) throw new OverLimit(quotaExceededMessage(quota.exceeded));

  const key = newGuestKey();
  const item: InstanceItem = {
    project_id: projectId,
    id: randomUUID(),
    name: req.name,
    created: now,
    updated: now,
    region: config.regionName,
    flavor_id: flavor.id,
    flavor_ram: flavor.ram,
    flavor_vcpus: flavor.vcpus,
    volume_size: size,
    datastore: datastoreRefOf(version),
    task_status: 'BUILDING',
    service_status: 'new',
    service_status_updated: now,
    server_status: 'BUILD',
    wrapped_key: await phases.time('key', () => wrapKey(key)),
    // Passwords travel to the guest only encrypted with its own key: never in the clear in
    // DynamoDB, in workflow input or history, or on the queue.
    sealed_prepare: encryptFor(key, {
      databases,
      users,
      restore: restore?.map(({ bucket, key: objectKey, checksum, data_key }) => ({
        bucket,
        key: objectKey,
        checksum,
        data_key,
      })),
      modules: modules.orders,
    }),
    access: req.access
      ? { is_public: req.access.is_public ?? false, allowed_cidrs: req.access.allowed_cidrs }
      : undefined,
    locality: req.locality,
    availability_zone: req.availability_zone,
    configuration_id: configurationId,
    ...(Object.keys(modules.records).length ? { modules: modules.records } : {}),
    // The durability its replica set will have; nothing waits before a replica follows it.
    ...(req.replication?.mode ? { replication_mode: req.replication.mode } : {}),
    // Who will replace its set's source when it dies (lib/replication/failover.ts).
    ...(req.replication?.failover ? { replication_failover: req.replication.failover } : {}),
  };
  await phases.time('write', () => putNewInstances([item], quota));

  await phases.time('workflow', () => startBuild(item));
  logger.info('instance create accepted', { instance_id: item.id, phases: `${phases}` });
  return item;
}

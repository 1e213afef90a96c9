import { randomUUID } from 'node:crypto';
import type { z } from 'zod';
import { getFlavor } from '../catalog/index.ts';
import type { Flavor } from '../catalog/types.ts';
import { config } from '../config.ts';
import { BadRequest, OverLimit } from '../errors.ts';
import { newGuestKey, wrapKey } from '../guest/keys.ts';
import { encryptFor } from '../guest/sealed.ts';
import type { InstanceItem } from '../instances/model.ts';
import { quotaChanges, quotaExceededMessage } from '../quotas.ts';
import type { ClusterInstanceRequest } from './schemas.ts';

// New cluster members, as a create and a grow both make them: Trove's checks of each asked-for
// instance, the quota they take, and their instance items.

export interface MemberSpec {
  flavor: Flavor;
  size: number;
  name?: string;
  availability_zone?: string;
}

/** Each member's flavor and volume, checked as Trove's cluster create and grow check them. */
export async function memberSpecs(nodes: z.infer<typeof ClusterInstanceRequest>[]): Promise<MemberSpec[]> {
  const specs: MemberSpec[] = [];
  for (const node of nodes) {
    const flavor = await getFlavor(node.flavorRef);
    if (!node.volume) throw new BadRequest('A volume size is required for each instance in the cluster.');
    const size = node.volume.size;
    if (size > config.maxAcceptedVolumeSize) {
      throw new OverLimit(
        `Volume 'size' cannot exceed maximum of ${config.maxAcceptedVolumeSize} GB, ${size} cannot be accepted.`,
      );
    }
    specs.push({ flavor, size, name: node.name, availability_zone: node.availability_zone });
  }
  return specs;
}

/** The quota the members take (instances, RAM, volume GB); Trove's 413 when over a limit. */
export async function memberQuota(projectId: string, specs: MemberSpec[]): ReturnType<typeof quotaChanges> {
  const quota = await quotaChanges(projectId, {
    instances: specs.length,
    ram: specs.reduce((sum, s) => sum + s.flavor.ram, 0),
    volumes: specs.reduce((sum, s) => sum + s.size, 0),
  });
  if (quota.exceeded.length) throw new OverLimit(quotaExceededMessage(quota.exceeded));
  return quota;
}

/** What every member of one cluster shares. */
export interface MemberCommon {
  project_id: string;
  cluster_id: string;
  datastore: InstanceItem['datastore'];
  now: string;
  locality?: string;
  configuration_id?: string;
}

/** A new member's instance item, BUILDING, with its own guest key (wrapped) and an empty prepare. */
export async function newMember(common: MemberCommon, spec: MemberSpec, name: string): Promise<InstanceItem> {
  const key = newGuestKey();
  return {
    project_id: common.project_id,
    id: randomUUID(),
    name,
    created: common.now,
    updated: common.now,
    region: config.regionName,
    flavor_id: spec.flavor.id,
    flavor_ram: spec.flavor.ram,
    flavor_vcpus: spec.flavor.vcpus,
    volume_size: spec.size,
    datastore: { ...common.datastore },
    task_status: 'BUILDING',
    service_status: 'new',
    service_status_updated: common.now,
    server_status: 'BUILD',
    wrapped_key: await wrapKey(key),
    sealed_prepare: encryptFor(key, { databases: [], users: [] }),
    locality: common.locality,
    availability_zone: spec.availability_zone,
    configuration_id: common.configuration_id,
    cluster_id: common.cluster_id,
  };
}

import { describe, expect, it } from 'vitest';
import { seedVersions } from '../../lib/catalog/seed-data.ts';
import type { DatastoreVersion } from '../../lib/catalog/types.ts';
import type { ClusterItem } from '../../lib/clusters/model.ts';
import {
  attachClusterConfiguration,
  clusterTargetVersion,
  clusterUpgradeRefusal,
  detachClusterConfiguration,
  restartCluster,
  upgradeCluster,
} from '../../lib/clusters/rolling.ts';
import { BadRequest, UnprocessableEntity } from '../../lib/errors.ts';

// The rolling cluster actions' checks (restart, upgrade, configuration_attach/_detach): each
// refusal is Trove's status and message, decided before anything is written (these clusters
// live in no table: a refusal that reached one would fail differently).

const redis = seedVersions.find((v) => v.datastore_name === 'redis') as DatastoreVersion;
const mysql = seedVersions.find((v) => v.datastore_name === 'mysql') as DatastoreVersion;
const sameEngine: DatastoreVersion = { ...redis, id: 'redis-7-0-rolling', name: '7.0-rolling' };
const redis8: DatastoreVersion = { ...redis, id: 'redis-8', name: '8.0', version: '8.0' };

const cluster = (over: Partial<ClusterItem> = {}): ClusterItem => ({
  project_id: 'p1',
  id: 'c1',
  name: 'c1',
  created: '2026-12-05T01:00:00',
  updated: '2026-12-05T01:00:00',
  task: 'NONE',
  datastore: {
    type: 'redis',
    version: redis.name,
    version_id: redis.id,
    version_number: redis.version,
    manager: 'redis',
  },
  instance_ids: ['m1', 'm2', 'm3'],
  ...over,
});

describe('cluster upgrade target', () => {
  const versions = [redis, mysql, sameEngine, redis8];

  it("refuses the cluster's own version, by name or id, with a 400", () => {
    for (const ref of [redis.name, redis.id]) {
      expect(() => clusterTargetVersion(versions, cluster(), ref)).toThrow(
        new BadRequest(`The cluster already runs datastore version '${redis.name}'.`),
      );
    }
  });

  it('refuses a version of another datastore or none at all with a 400 (never a 404)', () => {
    for (const ref of [mysql.name, mysql.id, 'no-such-version'])
      expect(() => clusterTargetVersion(versions, cluster(), ref)).toThrow(
        new BadRequest(`Datastore version '${ref}' is not a version of datastore 'redis'.`),
      );
  });

  it('takes another catalog version of the same engine, and refuses another engine build', () => {
    const target = clusterTargetVersion(versions, cluster(), '7.0-rolling');
    expect(target.id).toBe(sameEngine.id);
    expect(clusterUpgradeRefusal(versions, cluster(), target)).toBeUndefined();
    expect(clusterUpgradeRefusal(versions, cluster(), redis8)).toBe(
      "Upgrading datastore 'redis' to another version is not supported.",
    );
  });
});

describe('rolling actions refused before anything is written', () => {
  it("refuses any of them while another task runs (Trove's 422)", async () => {
    const busy = cluster({ task: 'GROWING_CLUSTER' });
    await expect(restartCluster(busy, {})).rejects.toThrow(
      new UnprocessableEntity(
        "This action cannot be performed on the cluster while the current cluster task is 'GROWING_CLUSTER'.",
      ),
    );
  });

  it('answers a malformed body with a validation 400', async () => {
    await expect(restartCluster(cluster(), 'now')).rejects.toBeInstanceOf(BadRequest);
    await expect(upgradeCluster(cluster(), {})).rejects.toThrow(/Validation error: datastore_version/);
    await expect(upgradeCluster(cluster(), { datastore_version: 7 })).rejects.toBeInstanceOf(BadRequest);
    await expect(attachClusterConfiguration(cluster(), { configuration_id: '' })).rejects.toThrow(
      /Validation error: configuration_id/,
    );
  });

  it('refuses a second group, and a detach with none attached', async () => {
    const attached = cluster({ configuration_id: 'g1' });
    await expect(attachClusterConfiguration(attached, { configuration_id: 'g2' })).rejects.toThrow(
      new BadRequest('Cluster c1 already has a Configuration Group attached: g1.'),
    );
    await expect(detachClusterConfiguration(cluster(), {})).rejects.toThrow(
      new BadRequest('Cluster c1 has no Configuration Group attached.'),
    );
  });
});

import { describe, expect, it } from 'vitest';
import { missingRuns, ownSlots, parseInfo } from '../../agent/engines/redis-cluster.ts';
import type { ClusterItem } from '../../lib/clusters/model.ts';
import { CreateClusterRequest } from '../../lib/clusters/schemas.ts';
import { notFormed, planSlots, SLOT_COUNT } from '../../lib/clusters/slots.ts';
import { clusterView } from '../../lib/clusters/views.ts';
import { BadRequest } from '../../lib/errors.ts';
import type { InstanceItem } from '../../lib/instances/model.ts';
import { validate } from '../../lib/validation.ts';

const now = '2026-12-05T01:00:00';
const member = (id: string, address: string): InstanceItem => ({
  project_id: 'p1',
  id,
  name: `c1-member-${id}`,
  created: now,
  updated: now,
  region: 'RegionOne',
  flavor_id: '7',
  flavor_ram: 1024,
  volume_size: 1,
  datastore: { type: 'redis', version: '7.0', version_id: 'v', version_number: '7.0', manager: 'redis' },
  task_status: 'NONE',
  service_status: 'healthy',
  service_status_updated: now,
  server_status: 'ACTIVE',
  addresses: [{ address, type: 'private' }],
  wrapped_key: 'k',
  cluster_id: 'c1',
});
const cluster: ClusterItem = {
  project_id: 'p1',
  id: 'c1',
  name: 'c1',
  created: now,
  updated: now,
  task: 'BUILDING',
  datastore: { type: 'redis', version: '7.0', version_id: 'v', version_number: '7.0', manager: 'redis' },
  instance_ids: ['m1', 'm2', 'm3'],
};
const members = [member('m3', '127.77.0.4'), member('m1', '127.77.0.2'), member('m2', '127.77.0.3')];
const ctx = { base: 'http://api', isAdmin: false, now: new Date('2026-12-05T01:00:30Z') };

describe('cluster views', () => {
  it("are Trove's: the task with its code and description, members in order, no server data in lists", () => {
    const view = clusterView(cluster, members, ctx);
    expect(view.task).toEqual({ id: 2, name: 'BUILDING', description: 'Building the initial cluster.' });
    expect(view.instances.map((i) => i.id)).toEqual(['m1', 'm2', 'm3']);
    expect(view.instances[0]).toEqual({
      id: 'm1',
      name: 'c1-member-m1',
      type: 'member',
      links: [
        { rel: 'self', href: 'http://api/v1.0/p1/instances/m1' },
        { rel: 'bookmark', href: 'http://api/instances/m1' },
      ],
    });
    expect(view).not.toHaveProperty('ip');
    expect(view.datastore).toEqual({ type: 'redis', version: '7.0' });
    expect(view.links[0]?.href).toBe('http://api/v1.0/p1/clusters/c1');
  });

  it('show each member with status, flavor, volume and address objects, and the top-level ip', () => {
    const view = clusterView({ ...cluster, task: 'NONE' }, members, ctx, { withServers: true });
    expect(view.task.id).toBe(1);
    expect(view.instances[1]).toMatchObject({
      status: 'ACTIVE',
      flavor: { id: '7' },
      volume: { size: 1 },
      ip: [{ address: '127.77.0.3', type: 'private' }],
    });
    expect(view.ip?.map((i) => i.address)).toEqual(['127.77.0.2', '127.77.0.3', '127.77.0.4']);
  });

  it('show a Redis Cluster replica with its type, its master as a member', () => {
    const replica = {
      ...member('r1', '127.77.0.5'),
      cluster_type: 'replica' as const,
      cluster_master_id: 'm1',
    };
    const view = clusterView({ ...cluster, instance_ids: ['m1', 'r1'] }, [...members, replica], ctx);
    expect(view.instances.map((i) => [i.id, i.type])).toEqual([
      ['m1', 'member'],
      ['r1', 'replica'],
    ]);
  });
});

describe('cluster create requests', () => {
  const valid = {
    cluster: {
      name: 'c1',
      datastore: { type: 'redis', version: '7.0' },
      instances: [{ flavorRef: '7', volume: { size: 1 } }],
    },
  };

  it('accept what python-troveclient sends', () => {
    const parsed = validate(CreateClusterRequest, {
      cluster: {
        ...valid.cluster,
        locality: 'anti-affinity',
        instances: [{ flavorRef: '7', volume: { size: '2' } }],
      },
    });
    expect(parsed.cluster.instances[0]?.volume?.size).toBe(2);
  });

  it.each([
    [{ cluster: { ...valid.cluster, instances: [] } }, /instances/],
    [{ cluster: { ...valid.cluster, datastore: { type: 'redis' } } }, /datastore/],
    [{ cluster: { ...valid.cluster, locality: 'nearby' } }, /locality/],
    [{ cluster: { ...valid.cluster, instances: [{ volume: { size: 1 } }] } }, /flavorRef/],
    [{ cluster: { ...valid.cluster, name: '' } }, /name/],
    [[], /JSON object/],
  ])('refuse %j with a 400 naming what is wrong', (body, message) => {
    expect(() => validate(CreateClusterRequest, body)).toThrow(BadRequest);
    expect(() => validate(CreateClusterRequest, body)).toThrow(message);
  });
});

describe('slot planning', () => {
  it.each([3, 4, 5, 7, 1000])('spreads all 16384 slots over %i masters, contiguous and even', (n) => {
    const ranges = planSlots(n);
    expect(ranges).toHaveLength(n);
    expect(ranges[0]?.[0]).toBe(0);
    expect(ranges[n - 1]?.[1]).toBe(SLOT_COUNT - 1);
    const sizes = ranges.map(([a, b]) => b - a + 1);
    expect(sizes.reduce((s, x) => s + x, 0)).toBe(SLOT_COUNT);
    expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
    for (let i = 1; i < n; i++) expect(ranges[i]?.[0]).toBe((ranges[i - 1]?.[1] ?? 0) + 1);
  });

  it('spreads 3 masters as redis-cli does', () => {
    expect(planSlots(3)).toEqual([
      [0, 5461],
      [5462, 10922],
      [10923, 16383],
    ]);
  });

  it('calls a cluster formed only when every member sees it whole', () => {
    const ok = {
      cluster_state: 'ok',
      cluster_slots_assigned: 16384,
      cluster_known_nodes: 3,
      cluster_size: 3,
    };
    expect(
      notFormed(
        [
          { id: 'a', info: ok },
          { id: 'b', info: ok },
        ],
        3,
      ),
    ).toBeUndefined();
    expect(
      notFormed(
        [
          { id: 'a', info: ok },
          { id: 'b', info: { ...ok, cluster_state: 'fail' } },
        ],
        3,
      ),
    ).toMatch(/member b says cluster_state:fail/);
    expect(notFormed([{ id: 'a', info: { ...ok, cluster_known_nodes: 2 } }], 3)).toMatch(/knows 2 of 3/);
    expect(notFormed([{ id: 'a', info: { ...ok, cluster_slots_assigned: 5462 } }], 3)).toMatch(
      /5462 of 16384/,
    );
  });
});

describe("a member's own slots (agent)", () => {
  const nodes = [
    'a1 127.77.0.2:6379@16379 myself,master - 0 0 1 connected 0-5 7 [8->-b2]',
    'b2 127.77.0.3:6379@16379 master - 0 1 2 connected 10-20',
    '',
  ].join('\n');

  it('are read from the myself line, migrations in flight aside', () => {
    expect([...ownSlots(nodes)].sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 7]);
  });

  it('are taken again only where missing, so a repeated order adds nothing', () => {
    expect(missingRuns([[0, 9]], ownSlots(nodes))).toEqual([
      [6, 6],
      [8, 9],
    ]);
    expect(missingRuns([[0, 5]], ownSlots(nodes))).toEqual([]);
  });

  it('report CLUSTER INFO as numbers', () => {
    expect(
      parseInfo(
        'cluster_state:ok\r\ncluster_slots_assigned:16384\r\ncluster_known_nodes:3\r\ncluster_size:3\r\n',
      ),
    ).toEqual({
      cluster_state: 'ok',
      cluster_slots_assigned: 16384,
      cluster_known_nodes: 3,
      cluster_size: 3,
    });
  });
});

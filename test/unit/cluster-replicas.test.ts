import { describe, expect, it } from 'vitest';
import { masterLinkStatus, replicaIds, roleOf } from '../../agent/engines/redis-cluster.ts';
import { rebalanceCommands } from '../../agent/engines/redis-rebalance.ts';
import { assignRoles, masterCount, replicaLeftBehind } from '../../lib/clusters/replicas.ts';
import { notFormed, SLOT_COUNT } from '../../lib/clusters/slots.ts';
import { BadRequest } from '../../lib/errors.ts';

const redis = { replicasSupported: true, manager: 'redis' };
type Member = { id: string; name: string; cluster_type?: 'replica'; cluster_master_id?: string };
const member = (id: string, extra: Partial<Member> = {}): Member => ({
  id,
  name: `c1-member-${id}`,
  ...extra,
});

describe('replicas asked for as troveclient sends them (type=replica,related_to=...)', () => {
  it('makes each replica follow the master it names, by name or id, among new and existing members', () => {
    const added = [member('4'), member('5'), member('6')];
    const roles = assignRoles(
      added,
      [{}, { type: ['replica'], related_to: 'c1-member-4' }, { type: 'replica', related_to: '1' }],
      [member('1'), member('2'), member('3')],
      redis,
    );
    expect(roles.map((m) => [m.id, m.cluster_type, m.cluster_master_id])).toEqual([
      ['4', undefined, undefined],
      ['5', 'replica', '4'],
      ['6', 'replica', '1'],
    ]);
    expect(masterCount(roles)).toBe(1);
  });

  it("pairs replicas sent without related_to (troveclient's create) with masters in order", () => {
    const six = ['1', '2', '3', '4', '5', '6'].map((id) => member(id));
    const replica = { type: 'replica' };
    const roles = assignRoles(
      six,
      [{}, {}, {}, replica, { ...replica, related_to: '1' }, replica],
      [],
      redis,
    );
    // The named pairing is kept; the others take the first masters still free.
    expect(roles.map((m) => m.cluster_master_id)).toEqual([undefined, undefined, undefined, '2', '1', '3']);
  });

  it("refuses with Trove's 400 what Redis Cluster cannot do", () => {
    const three = [member('1'), member('2'), member('3')];
    const refused =
      (requests: object[], existing: object[] = [], options = redis) =>
      () =>
        assignRoles(three, requests, existing as never, options);
    expect(refused([{}, { type: 'replica', related_to: '1' }, { type: 'replica' }])).toThrow(
      "Replica 'c1-member-3' has no master without a replica to follow",
    );
    expect(refused([{}, {}, { type: 'replica', related_to: 'nobody' }])).toThrow('names no instance');
    expect(refused([{}, { type: 'replica', related_to: '1' }, { type: 'replica', related_to: '2' }])).toThrow(
      'names a replica',
    );
    expect(refused([{}, { type: 'replica', related_to: '1' }, { type: 'replica', related_to: '1' }])).toThrow(
      'already has a replica',
    );
    expect(
      refused([{}, {}, { type: 'replica', related_to: '9' }], [member('9', { cluster_type: 'replica' })]),
    ).toThrow('names a replica');
    expect(refused([{}, {}, { type: 'arbiter' }])).toThrow("Instance type 'arbiter' is not supported");
    expect(
      refused([{}, {}, { type: 'replica', related_to: '1' }], [], {
        replicasSupported: false,
        manager: 'mariadb',
      }),
    ).toThrow(BadRequest);
  });
});

describe('a shrink with replicas', () => {
  const members = [
    member('1'),
    member('2'),
    member('r1', { cluster_type: 'replica', cluster_master_id: '1' }),
  ];

  it('lets a replica leave alone, or a master together with its replica', () => {
    expect(replicaLeftBehind(members, ['r1'])).toBeUndefined();
    expect(replicaLeftBehind(members, ['1', 'r1'])).toBeUndefined();
    expect(replicaLeftBehind(members, ['2'])).toBeUndefined();
  });

  it('refuses a master whose replica would stay behind, saying how to do it', () => {
    expect(replicaLeftBehind(members, ['1'])).toBe(
      "Instance '1' cannot be removed while its replica 'r1' stays in the cluster: remove them together, or the replica first.",
    );
  });

  it('removes leaving replicas first, with no slot moved for them', () => {
    const base = { entry: '10.0.0.1:6379', password: 'p' };
    const only = rebalanceCommands({ ...base, mode: 'shrink', leaving: [], leavingReplicas: ['r'] });
    expect(only.map((c) => c.slice(3))).toEqual([['--cluster', 'del-node', '10.0.0.1:6379', 'r']]);
    const both = rebalanceCommands({ ...base, mode: 'shrink', leaving: ['m'], leavingReplicas: ['r'] });
    expect(both.map((c) => c.slice(3, 6))).toEqual([
      ['--cluster', 'del-node', '10.0.0.1:6379'],
      ['--cluster', 'rebalance', '10.0.0.1:6379'],
      ['--cluster', 'del-node', '10.0.0.1:6379'],
    ]);
  });
});

describe("a cluster's check with replicas", () => {
  const ok = {
    cluster_state: 'ok',
    cluster_slots_assigned: SLOT_COUNT,
    cluster_known_nodes: 6,
    cluster_size: 3,
  };
  const infos = (over: object[]) => over.map((o, i) => ({ id: `m${i}`, info: { ...ok, ...o } }));
  const master = (slots: number) => ({ role: 'master', slots });
  const replica = (link = 'up') => ({ role: 'replica', slots: 0, master_link_status: link });

  it('balances slots over the masters only, and is formed once every replica is linked', () => {
    const formed = [master(5462), master(5461), master(5461), replica(), replica(), replica()];
    expect(notFormed(infos(formed), 6, 3)).toBeUndefined();
    // After a failover the roles the nodes report count, not the ones they were built with.
    expect(
      notFormed(infos([replica(), master(5461), master(5461), master(5462), replica(), replica()]), 6, 3),
    ).toBe(undefined);
  });

  it('waits while a replica is not following yet or its link is down', () => {
    expect(
      notFormed(infos([master(5462), master(5461), master(5461), replica(), replica(), master(0)]), 6, 3),
    ).toBe('2 of 3 replicas follow their masters');
    expect(
      notFormed(
        infos([master(5462), master(5461), master(5461), replica(), replica(), replica('down')]),
        6,
        3,
      ),
    ).toBe("replica m5's link to its master is down");
  });

  it("reads a node's role and link from CLUSTER NODES and INFO replication (agent)", () => {
    const nodes = [
      'bbb 10.0.0.2:6379@16379 myself,slave aaa 0 0 1 connected',
      'aaa 10.0.0.1:6379@16379 master - 0 0 1 connected 0-16383',
    ].join('\n');
    expect(roleOf(nodes)).toEqual({ role: 'replica', master: 'aaa' });
    expect(roleOf(nodes.replace('myself,slave aaa', 'myself,master -'))).toEqual({ role: 'master' });
    expect(replicaIds(nodes)).toEqual(['bbb']);
    expect(replicaIds(`${nodes}\nccc 10.0.0.3:6379@16379 handshake - 0 0 0 connected`)).toEqual(['bbb']);
    expect(masterLinkStatus('# Replication\r\nrole:slave\r\nmaster_link_status:up\r\n')).toBe('up');
  });
});

import { describe, expect, it } from 'vitest';
import { nodeIdAt, ownShare } from '../../agent/engines/redis-cluster.ts';
import { rebalanceCommands } from '../../agent/engines/redis-rebalance.ts';
import { GrowRequest, ShrinkRequest } from '../../lib/clusters/resize-schemas.ts';
import { leavingMembers } from '../../lib/clusters/shrink.ts';
import { migrationFailure, notFormed, SLOT_COUNT, slotsBalanced } from '../../lib/clusters/slots.ts';
import { BadRequest, NotFound } from '../../lib/errors.ts';
import { validate } from '../../lib/validation.ts';

const cluster = { instance_ids: ['a', 'b', 'c', 'd'] };

describe('cluster shrink requests', () => {
  it('takes members of the cluster, leaving at least the strategy minimum', () => {
    expect(leavingMembers(cluster, ['d'], 3)).toEqual(['d']);
  });

  it("refuses an instance that is not a member with Trove's 404", () => {
    const refused = () => leavingMembers(cluster, ['d', 'x'], 3);
    expect(refused).toThrow(NotFound);
    expect(refused).toThrow("Instance 'x' cannot be found.");
  });

  it('refuses to go below the minimum, or to empty the cluster', () => {
    expect(() => leavingMembers(cluster, ['c', 'd'], 3)).toThrow(
      'The number of instances in your cluster cannot safely be lowered below the current level based on your current fault-tolerance settings.',
    );
    expect(() => leavingMembers(cluster, ['a', 'b', 'c', 'd'], 1)).toThrow(
      'Must leave at least one instance in the cluster when shrinking.',
    );
  });

  it('refuses a member listed twice', () => {
    expect(() => leavingMembers(cluster, ['d', 'd'], 1)).toThrow(BadRequest);
  });

  it('needs a non-empty list of {id}', () => {
    expect(() => validate(ShrinkRequest, { shrink: [] })).toThrow(BadRequest);
    expect(() => validate(ShrinkRequest, { shrink: [{}] })).toThrow('Validation error: shrink[0]');
    expect(() => validate(ShrinkRequest, { shrink: 'd' })).toThrow(BadRequest);
    expect(validate(ShrinkRequest, { shrink: [{ id: 'd' }] }).shrink).toEqual([{ id: 'd' }]);
  });
});

describe('cluster grow requests', () => {
  it('takes members as a create does, with the CLI’s type list', () => {
    const grow = [{ flavorRef: '7', volume: { size: 1 }, name: 'x', type: ['member'] }];
    expect(validate(GrowRequest, { grow }).grow).toEqual(grow);
  });

  it('needs at least one member, each with a flavor', () => {
    expect(() => validate(GrowRequest, { grow: [] })).toThrow(BadRequest);
    expect(() => validate(GrowRequest, { grow: [{ volume: { size: 1 } }] })).toThrow(
      'Validation error: grow[0]',
    );
  });
});

describe('slots after a grow or shrink', () => {
  const ok = {
    cluster_state: 'ok',
    cluster_slots_assigned: SLOT_COUNT,
    cluster_known_nodes: 4,
    cluster_size: 4,
  };

  it('are balanced when every master serves its even share, give or take one', () => {
    expect(slotsBalanced([4096, 4096, 4096, 4096])).toBe(true);
    expect(slotsBalanced([5462, 5461, 5461])).toBe(true);
    expect(slotsBalanced([5462, 5461, 5461, 0])).toBe(false);
  });

  it('keep the check waiting while a slot moves or shares are uneven, and fail it on a failed move', () => {
    const infos = (over: object[]) => over.map((o, i) => ({ id: `m${i}`, info: { ...ok, ...o } }));
    expect(notFormed(infos([{ slots: 4096 }, { slots: 4096 }, { slots: 4096 }, { slots: 4096 }]), 4)).toBe(
      undefined,
    );
    expect(notFormed(infos([{ slots: 5462 }, { slots: 5461 }, { slots: 5461 }, { slots: 0 }]), 4)).toContain(
      'not spread evenly',
    );
    expect(notFormed(infos([{ migrating: true }]), 4)).toContain('being moved');
    expect(notFormed(infos([{ rebalance: { state: 'running' } }]), 4)).toContain('moving slots');
    expect(migrationFailure(infos([{}, { rebalance: { state: 'failed', error: 'ERR x' } }]))).toBe(
      'moving slots from member m1 failed: ERR x',
    );
  });
});

describe('the migration a member runs (agent)', () => {
  const base = { entry: '10.0.0.1:6379', password: 'p', ca: '/tls/ca.crt' };

  it('grows with one rebalance that fills the empty masters, over TLS as the cluster account', () => {
    expect(rebalanceCommands({ ...base, mode: 'grow', leaving: [] })).toEqual([
      [
        '--tls',
        '--cacert',
        '/tls/ca.crt',
        '--user',
        'troveless_cluster',
        '--no-auth-warning',
        '--cluster',
        'rebalance',
        '10.0.0.1:6379',
        '--cluster-use-empty-masters',
      ],
    ]);
  });

  it('shrinks by weighing the leaving nodes 0, then removing each; the password is no argument', () => {
    const commands = rebalanceCommands({ ...base, mode: 'shrink', leaving: ['abc'] });
    expect(commands.map((c) => c.slice(6))).toEqual([
      ['--cluster', 'rebalance', '10.0.0.1:6379', '--cluster-weight', 'abc=0'],
      ['--cluster', 'del-node', '10.0.0.1:6379', 'abc'],
    ]);
    expect(commands.flat()).not.toContain('p');
    expect(rebalanceCommands({ ...base, mode: 'shrink', leaving: [] })).toEqual([]);
  });

  it('finds node ids by address, and its own share of slots', () => {
    const nodes = [
      'aaa 10.0.0.1:6379@16379 myself,master - 0 0 1 connected 0-99 [100->-bbb]',
      'bbb 10.0.0.2:6379@16379 master - 0 0 2 connected 100-199',
    ].join('\n');
    expect(nodeIdAt(nodes, '10.0.0.2', 6379)).toBe('bbb');
    expect(nodeIdAt(nodes, '10.0.0.3', 6379)).toBeUndefined();
    expect(ownShare(nodes)).toEqual({ slots: 100, migrating: true });
  });
});

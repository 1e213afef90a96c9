import { describe, expect, it } from 'vitest';
import { GrowRequest, ShrinkRequest } from '../../lib/clusters/resize-schemas.ts';
import { leavingMembers } from '../../lib/clusters/shrink.ts';
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

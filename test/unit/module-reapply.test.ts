import { describe, expect, it } from 'vitest';
import type { InstanceModuleRecord } from '../../lib/modules/model.ts';
import {
  batchesOf,
  batchLimits,
  reapplyTargets,
  wantsReapply,
  withReapplyErrors,
} from '../../lib/modules/reapply.ts';
import { type GuestModuleView, ReapplyModuleRequest } from '../../lib/modules/schemas.ts';
import { validate } from '../../lib/validation.ts';

// Trove's module reapply (trove/module/service.py reapply, taskmanager/models.py
// ModuleTasks.reapply_module): its body, which instances it touches, its batches, and what an
// instance shows when a reapply did not take.

const record = (md5: string): InstanceModuleRecord => ({ md5, created: 't0', updated: 't0' });

describe('reapply body', () => {
  it("takes what python-troveclient's module-reapply sends", () => {
    // `trove module-reapply m --md5 abc --batch_size 3 --delay 7 --force`, flags as int(bool).
    const body = {
      reapply: { md5: 'abc', include_clustered: 0, batch_size: 3, batch_delay: 7, force: 1 },
    };
    expect(validate(ReapplyModuleRequest, body).reapply).toEqual(body.reapply);
    // With no option at all the CLI still sends the two flags.
    expect(validate(ReapplyModuleRequest, { reapply: { include_clustered: 0, force: 0 } }).reapply).toEqual({
      include_clustered: 0,
      force: 0,
    });
    expect(validate(ReapplyModuleRequest, { reapply: {} }).reapply).toEqual({});
  });

  it("refuses a body without `reapply`, and values Trove's taskmanager could not use, as 400s", () => {
    const cases: [unknown, string][] = [
      [{}, 'Validation error: reapply '],
      [{ reapply: [] }, 'Validation error: reapply '],
      [{ reapply: { batch_size: 'ten' } }, "Validation error: reapply['batch_size'] "],
      [{ reapply: { batch_size: -1 } }, "Validation error: reapply['batch_size'] "],
      [{ reapply: { batch_delay: 1.5 } }, "Validation error: reapply['batch_delay'] "],
      [{ reapply: { force: 2 } }, "Validation error: reapply['force'] "],
      [{ reapply: { md5: 7 } }, "Validation error: reapply['md5'] "],
    ];
    for (const [body, message] of cases) {
      expect(() => validate(ReapplyModuleRequest, body), JSON.stringify(body)).toThrow(message);
    }
  });
});

describe('reapply selection', () => {
  it('takes instances with another md5 than the current one; all of them with force', () => {
    expect(wantsReapply(record('old'), 'new', {})).toBe(true);
    expect(wantsReapply(record('new'), 'new', {})).toBe(false);
    expect(wantsReapply(record('new'), 'new', { force: true })).toBe(true);
  });

  it('with an md5, only the instances that have that one', () => {
    expect(wantsReapply(record('old'), 'new', { md5: 'old' })).toBe(true);
    expect(wantsReapply(record('older'), 'new', { md5: 'old' })).toBe(false);
    // An md5 that is the current one finds nothing to do, unless forced.
    expect(wantsReapply(record('new'), 'new', { md5: 'new' })).toBe(false);
    expect(wantsReapply(record('new'), 'new', { md5: 'new', force: true })).toBe(true);
  });

  it('names each chosen instance with the md5 it had', () => {
    const holders = [
      { project_id: 'p1', id: 'a', record: record('old') },
      { project_id: 'p1', id: 'b', record: record('new') },
      { project_id: 'p2', id: 'c', record: record('older') },
    ];
    expect(reapplyTargets(holders, 'new', {})).toEqual([
      { project_id: 'p1', instance_id: 'a', from_md5: 'old' },
      { project_id: 'p2', instance_id: 'c', from_md5: 'older' },
    ]);
    expect(reapplyTargets(holders, 'new', { md5: 'older' }).map((t) => t.instance_id)).toEqual(['c']);
  });
});

describe('reapply batches', () => {
  it("uses Trove's defaults (50 instances, 2 s) for none or 0, and holds a non-admin to them", () => {
    expect(batchLimits(true, undefined, undefined)).toEqual({ batchSize: 50, batchDelay: 2 });
    expect(batchLimits(true, 0, 0)).toEqual({ batchSize: 50, batchDelay: 2 });
    expect(batchLimits(true, 500, 1)).toEqual({ batchSize: 500, batchDelay: 1 });
    expect(batchLimits(false, 500, 1)).toEqual({ batchSize: 50, batchDelay: 2 });
    expect(batchLimits(false, 3, 10)).toEqual({ batchSize: 3, batchDelay: 10 });
  });

  it('pauses after each batch but the last', () => {
    const targets = ['a', 'b', 'c', 'd', 'e'].map((id) => ({
      project_id: 'p',
      instance_id: id,
      from_md5: 'm',
    }));
    const batches = batchesOf(targets, 2, 7);
    expect(batches.map((b) => [b.targets.map((t) => t.instance_id), b.delay])).toEqual([
      [['a', 'b'], 7],
      [['c', 'd'], 7],
      [['e'], 0],
    ]);
    expect(batchesOf(targets, 5, 7).map((b) => b.delay)).toEqual([0]);
    expect(batchesOf([], 5, 7)).toEqual([]);
  });
});

describe("an instance's module status after a reapply", () => {
  const guest = (md5: string): GuestModuleView => ({
    id: 'm1',
    name: 'm',
    type: 'ping',
    datastore: 'redis',
    datastore_version: 'all',
    tenant: 'p',
    md5,
    status: 'OK',
    message: 'hi',
    created: 't0',
    updated: 't0',
    removed: null,
    auto_apply: false,
    visible: true,
    is_admin: false,
    contents: null,
  });

  it('is the guest’s own when no reapply failed', () => {
    expect(withReapplyErrors([guest('old')], { m1: record('old') })).toEqual([guest('old')]);
    expect(withReapplyErrors([guest('old')], undefined)).toEqual([guest('old')]);
  });

  it('shows a failed reapply as ERROR with why, while the guest has another md5', () => {
    const failed = {
      m1: { ...record('old'), reapply_error: { md5: 'new', message: 'Timeout', at: 't1' } },
    };
    expect(withReapplyErrors([guest('old')], failed)).toEqual([
      { ...guest('old'), status: 'ERROR', message: 'Reapply of md5 new failed at t1: Timeout' },
    ]);
    // The guest got it after all (a late answer): its own result is the truth.
    expect(withReapplyErrors([guest('new')], failed)).toEqual([guest('new')]);
  });
});

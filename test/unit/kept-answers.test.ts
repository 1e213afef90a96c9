import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { KeptAnswers } from '../../agent/dedup.ts';

// The guest's kept answers: what a workflow's order sent again is answered with, across an
// agent's restart, and never more than a bounded file.

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
const fileIn = () => {
  const dir = mkdtempSync(join(tmpdir(), 'kept-answers-'));
  dirs.push(dir);
  return join(dir, 'operations-answered.json');
};

describe('kept answers', () => {
  it('survive the agent: a new store on the same file gives them back', () => {
    const file = fileIn();
    new KeptAnswers(file).keep('op-1', { method: 'restart', ok: true, result: null });
    expect(new KeptAnswers(file).get('op-1')).toEqual({ method: 'restart', ok: true, result: null });
    expect(new KeptAnswers(file).get('op-2')).toBeUndefined();
  });

  it('keep the newest ones only, and no answer too large to keep', () => {
    const file = fileIn();
    const answers = new KeptAnswers(file, 4, 200);
    for (const id of ['a', 'b', 'c', 'd'])
      answers.keep(id, { method: 'create_backup', ok: true, result: { id } });
    answers.keep('big', { method: 'list_users', ok: true, result: 'x'.repeat(500) });
    const reread = new KeptAnswers(file, 4, 200);
    expect(['a', 'b', 'c', 'd'].map((id) => Boolean(reread.get(id)))).toEqual([false, true, true, true]);
    // Answered, but not kept: remembered as such, so it is never answered again as failed.
    expect(reread.get('big')).toBe('unkept');
  });

  it('start empty on a file that cannot be read, rather than keep the agent from starting', () => {
    const file = fileIn();
    writeFileSync(file, '[["op-1", {"method": "rest');
    const answers = new KeptAnswers(file);
    expect(answers.get('op-1')).toBeUndefined();
    answers.keep('op-2', { method: 'restart', ok: true, result: null });
    expect(new KeptAnswers(file).get('op-2')).toMatchObject({ ok: true });
  });
});

import { existsSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { UpgradeResult } from './manager.ts';

// What an engine's upgrade (Trove's upgrade: PostgreSQL's pg_upgrade, MariaDB's mariadb-upgrade)
// shares: the data's fingerprint compared before and after, and the error that names the step.

/** Per table: its row count and an order-free hash of its rows (each engine computes its own). */
export type Fingerprint = Record<string, { rows: number; hash: string }>;

/** What differs between two fingerprints, in words; empty when they are equal. */
export function fingerprintDifferences(before: Fingerprint, after: Fingerprint): string[] {
  const names = new Set([...Object.keys(before), ...Object.keys(after)]);
  const diffs: string[] = [];
  for (const name of [...names].sort()) {
    const a = before[name];
    const b = after[name];
    if (!a) diffs.push(`${name} appeared`);
    else if (!b) diffs.push(`${name} is missing`);
    else if (a.rows !== b.rows) diffs.push(`${name} has ${b.rows} rows, had ${a.rows}`);
    else if (a.hash !== b.hash) diffs.push(`${name} reads back different data`);
  }
  return diffs;
}

/** Throws when the data read back after an upgrade differs from what it was before. */
export function assertSameData(before: Fingerprint, after: Fingerprint): void {
  const diffs = fingerprintDifferences(before, after);
  if (diffs.length) throw new Error(`the data does not read back: ${diffs.slice(0, 5).join('; ')}`);
}

/** An upgrade that failed: the instance runs the old version again; `step` says where it failed. */
export class UpgradeFailed extends Error {
  constructor(
    readonly step: string,
    message: string,
  ) {
    super(message);
    this.name = 'UpgradeFailed';
  }
}

/** The upgrade's failure, after the old version was put back (or the putting back failed too). */
export async function failUpgrade(
  step: string,
  what: string,
  err: unknown,
  putBack: () => Promise<void>,
  old: string,
): Promise<never> {
  const why = err instanceof Error ? err.message : String(err);
  await putBack().catch((undo: Error) => {
    throw new UpgradeFailed(
      step,
      `${what} failed at step ${step}: ${why}; putting ${old} back failed too: ${undo.message}`,
    );
  });
  throw new UpgradeFailed(step, `${what} failed at step ${step}: ${why}`);
}

/** What the guest answers for an upgrade that went through: the data it verified, and how long it took. */
export function upgradeResult(
  names: { from: string; to: string },
  method: UpgradeResult['method'],
  after: Fingerprint,
  started: number,
): UpgradeResult {
  return {
    from: names.from,
    to: names.to,
    method,
    tables: Object.keys(after).length,
    rows: Object.values(after).reduce((n, t) => n + t.rows, 0),
    seconds: Math.round((performance.now() - started) / 100) / 10,
  };
}

/** An upgrade under way, kept on the volume (upgrade.json): a guest that restarts in its middle undoes it. */
export const upgradeState = {
  save: (baseDir: string, state: object) =>
    writeFile(join(baseDir, 'upgrade.json'), JSON.stringify(state), { mode: 0o600 }),
  clear: (baseDir: string) => rm(join(baseDir, 'upgrade.json'), { force: true }),
  /** The state an interrupted upgrade left, if any. */
  async load<T>(baseDir: string): Promise<T | undefined> {
    const file = join(baseDir, 'upgrade.json');
    return existsSync(file) ? (JSON.parse(await readFile(file, 'utf8')) as T) : undefined;
  },
};

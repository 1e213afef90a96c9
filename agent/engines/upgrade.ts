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

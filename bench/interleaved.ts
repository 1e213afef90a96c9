// Several calls measured side by side: round after round, each round runs every probe once, so
// whatever drifts during a run (GC, DynamoDB Local's JIT, other processes' load, the machine's
// clock speed) lands on every probe alike instead of on whichever was measured in that block.
// The order changes from one round to the next (roundOrder), so that every probe follows every
// other one equally often: a call made after an HTTP request (a few idle milliseconds of its
// socket) costs more than one made straight after another table call, and no probe may always
// get the cheap place. With several clients, each runs rounds of its own, so every probe sees the same
// concurrency too.

/** What a probe reports of one call, besides its duration (which the runner takes). */
export interface Outcome {
  ok: boolean;
  /** Server-Timing phases (ms by name), for HTTP probes. */
  phases?: Map<string, number>;
}

export type Probe = () => Promise<Outcome>;

export interface Sample {
  ms: number;
  ok: boolean;
  phases?: Map<string, number>;
}

/**
 * Round `round`'s order of `count` probes, from Williams' balanced Latin square: over `count`
 * rounds (2 × `count` when odd) every probe takes every place equally often and follows every
 * other probe equally often, so none always comes after an HTTP request or after a table call.
 */
export function roundOrder(round: number, count: number): number[] {
  const first = Array.from({ length: count }, (_, j) =>
    j % 2 === 1 ? (j + 1) / 2 : (count - j / 2) % count,
  );
  const shift = round % count;
  const row = first.map((p) => (p + shift) % count);
  // An odd square is balanced by its rows and their mirror images together.
  return count % 2 === 1 && round % (2 * count) >= count ? row.reverse() : row;
}

/**
 * `warmup` rounds not kept, then `rounds` rounds timed, `clients` of them running at once; every
 * probe's samples in the order they ended, and the wall time of the timed rounds.
 */
export async function interleaved<K extends string>(
  probes: Record<K, Probe>,
  opts: { rounds: number; warmup: number; clients: number },
): Promise<{ samples: Record<K, Sample[]>; wallMs: number }> {
  const keys = Object.keys(probes) as K[];
  const run = async (rounds: number, keep: boolean) => {
    const samples = Object.fromEntries(keys.map((k) => [k, [] as Sample[]])) as Record<K, Sample[]>;
    let next = 0;
    const client = async () => {
      while (next < rounds) {
        const round = next++;
        for (const j of roundOrder(round, keys.length)) {
          const key = keys[j] as K;
          const t0 = performance.now();
          const out = await probes[key]();
          const ms = performance.now() - t0;
          if (keep) samples[key].push({ ms, ok: out.ok, ...(out.phases ? { phases: out.phases } : {}) });
        }
      }
    };
    const t0 = performance.now();
    await Promise.all(Array.from({ length: Math.max(1, Math.min(opts.clients, rounds)) }, client));
    return { samples, wallMs: performance.now() - t0 };
  };
  await run(opts.warmup, false);
  return run(opts.rounds, true);
}

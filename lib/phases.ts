// How long each phase of an operation took, logged as one line of `name N ms` pairs: a compute
// host's launch says what isolation adds, its delete which phase outlasted a timeout, a guest's
// prepare where the engine's time went.

export class Phases {
  readonly ms = new Map<string, number>();

  /** Runs `work` and adds its duration to `name` (also when it fails: the log says how far it got). */
  async time<T>(name: string, work: () => Promise<T>): Promise<T> {
    const t = performance.now();
    try {
      return await work();
    } finally {
      this.add(name, performance.now() - t);
    }
  }

  add(name: string, ms: number): void {
    this.ms.set(name, (this.ms.get(name) ?? 0) + ms);
  }

  /** Another operation's phases, in their order, after these. */
  include(other: Phases): void {
    for (const [name, ms] of other.ms) this.add(name, ms);
  }

  toString(): string {
    return [...this.ms].map(([name, ms]) => `${name} ${ms.toFixed(0)} ms`).join(', ');
  }
}

/** The `name N ms` pairs of a line Phases wrote, by name (readers: the provision bench). */
export function parsePhases(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const [, name, ms] of text.matchAll(/(?:^|, )([\w-]+) (\d+) ms/g))
    if (name !== undefined) out.set(name, Number(ms));
  return out;
}

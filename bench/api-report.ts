// The tables `npm run bench -- api` prints (bench/api.ts measures).
import { fixed, load, percentile, ratio, row, verdict } from './cloud.ts';

export const GOAL = 1.5;

export interface Figures {
  label: string;
  mode: string;
  n: number;
  p50: number;
  p90: number;
  p99: number;
  /** Calls that did not answer as they should (HTTP: not 200). */
  errors: number;
  reference: string;
  /** Per phase the handler reported (Server-Timing), and `outside`: each request less its handler. */
  phases: Map<string, number[]>;
}

export interface Scale {
  size: number;
  first: Figures;
  middle: Figures;
  query: Figures;
}

/** Keys of one interleaved loop: floor, get, show, query, list, update. */
export type Loop = Map<string, Figures>;

const at = (loop: Loop, key: string): Figures =>
  loop.get(key) ?? ({ p50: Number.NaN, p90: Number.NaN, phases: new Map() } as unknown as Figures);

function printLatencies(loops: Loop[]): void {
  const w = [38, 12, 5, 8, 8, 8, 6, 14];
  console.log('');
  console.log(
    'every probe of a loop measured interleaved: round after round, one call of each, the order changing',
  );
  console.log(row(['probe', 'mode', 'n', 'p50 ms', 'p90 ms', 'p99 ms', 'errors', 'real Trove p50'], w));
  for (const loop of loops)
    for (const f of loop.values())
      console.log(
        row(
          [
            f.label,
            f.mode,
            String(f.n),
            fixed(f.p50, 1),
            fixed(f.p90, 1),
            fixed(f.p99, 1),
            String(f.errors),
            f.reference,
          ],
          w,
        ),
      );
}

// Where each request's time went, from the handler's Server-Timing: token (verify + revocation),
// limits (the rate limiter's write), route (table read + view), get (show's GetItem alone, as
// the function sees it), query (list's Query alone), handler (all of the function), outside (the
// request less the handler: client, front door, serverless-offline), and connections: how many
// the function opened while serving, all the timed requests together (a count, not ms; 0 when
// keep-alive holds and the client outlives the request).
function printPhases(loops: Loop[]): void {
  const names = ['token', 'limits', 'route', 'get', 'query', 'handler', 'outside', 'connections'];
  const p = [38, 12, ...names.map(() => 8)];
  console.log(
    '\nwhere the time goes: p50 ms of each phase (the handler’s Server-Timing; connections: a total)',
  );
  console.log(row(['route', 'mode', ...names], p));
  for (const loop of loops)
    for (const key of ['floor', 'show', 'list']) {
      const f = at(loop, key);
      const cells = names.map((n) => {
        const xs = f.phases.get(n);
        if (!xs?.length) return '-';
        return n === 'connections' ? String(xs.reduce((a, b) => a + b, 0)) : fixed(percentile(xs, 50), 2);
      });
      console.log(row([f.label, f.mode, ...cells], p));
    }
  console.log('the same table call inside the API (Server-Timing) and from the bench (raw), p50 ms:');
  for (const loop of loops) {
    const inside = (route: string, phase: string) => percentile(at(loop, route).phases.get(phase) ?? [], 50);
    console.log(
      `  ${at(loop, 'floor').mode}: GetItem ${fixed(inside('show', 'get'))} inside, ${fixed(at(loop, 'get').p50)} raw; ` +
        `Query ${fixed(inside('list', 'query'))} inside, ${fixed(at(loop, 'query').p50)} raw`,
    );
  }
}

/** Each route against (floor + its table call), at p50 and p90 of both loops; true when the goals hold. */
function printGoals(sequential: Loop, concurrent: Loop): boolean {
  console.log(
    `\nratios (same loop, same percentile): route / (floor + its raw table call); the goal is ≤ ${GOAL}× at the sequential p50`,
  );
  const g = [30, 12, 10, 10, 10, 8, 8];
  console.log(row(['', 'mode', 'floor', 'table', 'route', 'ratio', ''], g));
  let met = true;
  for (const [loop, goal] of [
    [sequential, true],
    [concurrent, false],
  ] as const)
    for (const pct of ['p50', 'p90'] as const)
      for (const [route, call, name] of [
        ['show', 'get', 'GetItem'],
        ['list', 'query', 'Query'],
      ] as const) {
        const floor = at(loop, 'floor')[pct];
        const table = at(loop, call)[pct];
        const measured = at(loop, route)[pct];
        const r = measured / (floor + table);
        const isGoal = goal && pct === 'p50';
        if (isGoal) met &&= r <= GOAL;
        console.log(
          row(
            [
              `${route} ${pct} vs floor + ${name}`,
              at(loop, route).mode,
              fixed(floor, 2),
              fixed(table, 2),
              fixed(measured, 2),
              `${fixed(r, 2)}x`,
              isGoal ? verdict(r <= GOAL) : r <= GOAL ? '(ok)' : '(over)',
            ],
            g,
          ),
        );
      }
  return met;
}

function printScale(scale: Scale[], rounds: number, page: number): void {
  console.log(`\nlist latency by project size (limit ${page}, ${rounds} interleaved rounds of every size)`);
  console.log("(raw Query: the first page's Query from the bench process, what DynamoDB Local adds)");
  const s = [22, 10, 10, 10, 10, 10];
  console.log(
    row(['instances in project', 'first p50', 'first p90', 'middle p50', 'middle p90', 'raw Query'], s),
  );
  for (const { size, first, middle, query } of scale)
    console.log(
      row(
        [
          size.toLocaleString('en'),
          fixed(first.p50, 1),
          fixed(first.p90, 1),
          fixed(middle.p50, 1),
          fixed(middle.p90, 1),
          fixed(query.p50, 1),
        ],
        s,
      ),
    );
  const firsts = scale.map((x) => x.first.p50);
  const smallest = scale[0]?.first.p50 ?? Number.NaN;
  const largest = scale[scale.length - 1]?.first.p50 ?? Number.NaN;
  console.log(
    `largest / smallest project, first page p50: ${ratio(largest, smallest)} ` +
      `(spread of first-page p50s ${fixed(Math.max(...firsts) - Math.min(...firsts), 1)} ms)`,
  );
}

/** Prints every table; true when both goals were met. */
export function printReport(
  sequential: Loop,
  concurrent: Loop,
  scale: Scale[],
  opts: { errors: number; scaleRounds: number; page: number; trove: { list: string; show: string } },
): boolean {
  printLatencies([sequential, concurrent]);
  printPhases([sequential, concurrent]);
  const met = printGoals(sequential, concurrent);
  printScale(scale, opts.scaleRounds, opts.page);
  console.log(
    `\nreal Trove on this machine (brief): list p50 ${opts.trove.list} ms, show p50 ${opts.trove.show} ms; ` +
      `Troveless sequential: list ${fixed(at(sequential, 'list').p50, 1)} ms, show ${fixed(at(sequential, 'show').p50, 1)} ms`,
  );
  console.log(
    opts.errors ? `${opts.errors} requests did not answer 200` : 'every timed request answered 200',
  );
  console.log(`(${load()})`);
  return met;
}

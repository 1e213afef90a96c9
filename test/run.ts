// `npm test`: the whole suite as two vitest runs side by side. The e2e files run one at a time
// against one local cloud; vitest runs such a project only after every other project has finished
// (its files are a group of their own), so the unit, integration and security files, ~4 minutes
// on two cores, used to wait for nothing but their turn. Both halves wait mostly on engines and
// services, so they share two cores well.
//
// The e2e run's output streams as it comes; the other run's is printed whole once it ends (two
// reporters interleaved line by line would be unreadable). With arguments (`npm test -- <files or
// vitest options>`), it is one plain `vitest run` with them.
import { type ChildProcess, spawn } from 'node:child_process';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');
const vitest = join(root, 'node_modules', '.bin', 'vitest');
const children = new Set<ChildProcess>();
// Ctrl-C reaches both runs from the terminal (one process group); this one waits for them to wind
// down (the e2e run stops its cloud) and still prints what they said. A SIGTERM or SIGHUP sent to
// this one alone is passed on.
process.on('SIGINT', () => {});
for (const signal of ['SIGTERM', 'SIGHUP'] as const) {
  process.on(signal, () => {
    for (const child of children) child.kill(signal);
  });
}

interface Outcome {
  code: number;
  /** The signal that ended the run, if one did. */
  signal?: string;
  output: string;
  seconds: number;
}

function run(args: string[], capture: boolean): Promise<Outcome> {
  const started = performance.now();
  return new Promise((done) => {
    const child = spawn(vitest, ['run', ...args], {
      cwd: root,
      stdio: capture ? ['ignore', 'pipe', 'pipe'] : 'inherit',
    });
    children.add(child);
    const chunks: Buffer[] = [];
    child.stdout?.on('data', (c: Buffer) => chunks.push(c));
    child.stderr?.on('data', (c: Buffer) => chunks.push(c));
    const finish = (code: number, signal?: string) => {
      children.delete(child);
      done({
        code,
        signal,
        output: Buffer.concat(chunks).toString(),
        seconds: (performance.now() - started) / 1000,
      });
    };
    child.once('error', (err) => {
      chunks.push(Buffer.from(`${err.message}\n`));
      finish(1);
    });
    child.once('close', (code, signal) => finish(code ?? 1, signal ?? undefined));
  });
}

const args = process.argv.slice(2);
if (args.length) {
  process.exit((await run(args, false)).code);
}

const rest = run(['--project', 'unit', '--project', 'integration', '--project', 'security'], true).then(
  (result) => {
    process.stdout.write(
      `\n──── unit, integration and security (run beside e2e): ──────────────\n${result.output}` +
        '──── end of unit, integration and security ─────────────────────────\n\n',
    );
    return result;
  },
);
const e2e = run(['--project', 'e2e'], false);
const [a, b] = await Promise.all([rest, e2e]);
const verdict = (r: Outcome) =>
  `${r.code === 0 ? 'passed' : `FAILED (${r.signal ? `killed by ${r.signal}` : `exit code ${r.code}`})`} in ${r.seconds.toFixed(0)} s`;
console.log(`npm test: unit, integration and security ${verdict(a)}; e2e ${verdict(b)}`);
process.exit(a.code || b.code);

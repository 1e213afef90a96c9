// `npm run bench -- coldstart [--node <path>]... [--bundle <label>=<file.mjs>]...`: the cold start
// of one API handler bundle (the instances handlers: list, show, create, ...), bundled as
// `serverless package` bundles it (the esbuild options are read from serverless.yml): its size,
// and how long a fresh `node` takes to import it. Each `--node` adds a Node binary (e.g. the
// system's), each `--bundle` a bundle built elsewhere (e.g. from another commit), for comparison.
// The AWS SDK stays external, as on Lambda (the runtime ships it); here it resolves from
// node_modules, so its load time is part of the figure, as it is on Lambda.
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { build } from 'esbuild';
import { parse } from 'yaml';
import { fixed, load, median, percentile, ROOT, row } from './cloud.ts';

const execFileAsync = promisify(execFile);
const HANDLER = 'functions/api/instances.ts';
const RUNS = 15;
const WARMUP = 2;

interface EsbuildSettings {
  target: string;
  format: 'esm';
  platform: 'node';
  minify: boolean;
  banner?: { js?: string };
  exclude?: string[];
}

function esbuildSettings(): EsbuildSettings {
  const doc = parse(readFileSync(join(ROOT, 'serverless.yml'), 'utf8')) as {
    custom: { esbuild: EsbuildSettings };
  };
  return doc.custom.esbuild;
}

// Prints the ms from before `import()` to the handler being exported, inside a fresh process.
const PROBE =
  'const t0 = performance.now(); const m = await import(process.argv[1]); ' +
  "if (typeof (m.handler ?? m.list) !== 'function') throw new Error('no handler export'); " +
  'process.stdout.write(JSON.stringify({ ms: performance.now() - t0, version: process.version }));';

async function importOnce(node: string, bundle: string): Promise<{ ms: number; version: string }> {
  const { stdout } = await execFileAsync(node, ['--input-type=module', '-e', PROBE, bundle], {
    cwd: ROOT,
    env: { ...process.env, AWS_REGION: process.env.AWS_REGION ?? 'us-east-1' },
  });
  return JSON.parse(stdout) as { ms: number; version: string };
}

/** `--node <path>` adds a Node binary, `--bundle <label>=<path>` an already built bundle. */
function options(args: string[]): { nodes: string[]; bundles: { label: string; path: string }[] } {
  const nodes = [process.execPath];
  const bundles: { label: string; path: string }[] = [];
  for (let i = 0; i < args.length; i++) {
    const value = args[i + 1];
    if (args[i] === '--node' && value) nodes.push(value);
    else if (args[i] === '--bundle' && value?.includes('=')) {
      const at = value.indexOf('=');
      bundles.push({ label: value.slice(0, at), path: resolve(value.slice(at + 1)) });
    } else continue;
    i++;
  }
  return { nodes, bundles };
}

export async function run(args: string[]): Promise<number> {
  const settings = esbuildSettings();
  const outDir = join(ROOT, '.local', 'bench-coldstart');
  mkdirSync(outDir, { recursive: true });
  const outfile = join(outDir, 'instances.mjs');
  await build({
    entryPoints: [join(ROOT, HANDLER)],
    outfile,
    bundle: true,
    minify: settings.minify,
    format: settings.format,
    platform: settings.platform,
    target: settings.target,
    banner: settings.banner,
    external: settings.exclude,
    logLevel: 'error',
  });
  const { nodes, bundles } = options(args);
  bundles.unshift({ label: 'this tree', path: outfile });
  console.log(
    `bench coldstart: ${HANDLER} bundled as serverless.yml says (target ${settings.target}, ` +
      `external ${(settings.exclude ?? []).join(' ')}); ${RUNS} fresh imports per bundle and node, ` +
      `taken in turns, after ${WARMUP} warm-up; ${load()}`,
  );
  const cases = bundles.flatMap((bundle) =>
    nodes.map((node) => ({ bundle, node, version: '', ms: [] as number[] })),
  );
  for (const c of cases) {
    for (let i = 0; i < WARMUP; i++) c.version = (await importOnce(c.node, c.bundle.path)).version;
  }
  // In turns, so that a change in the machine's load during the run weighs on every case alike.
  for (let i = 0; i < RUNS; i++) {
    for (const c of cases) c.ms.push((await importOnce(c.node, c.bundle.path)).ms);
  }
  const widths = [12, 8, 10, 8, 8, 8];
  console.log(row(['bundle', 'KB', 'node', 'p50 ms', 'p90 ms', 'min ms'], widths));
  for (const c of cases) {
    const kb = statSync(c.bundle.path).size / 1024;
    console.log(
      row(
        [
          c.bundle.label,
          fixed(kb, 1),
          c.version,
          fixed(median(c.ms), 1),
          fixed(percentile(c.ms, 90), 1),
          fixed(Math.min(...c.ms), 1),
        ],
        widths,
      ),
    );
  }
  console.log(`  (${load()})`);
  return 0;
}

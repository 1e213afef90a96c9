import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rename, rm } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { build, stop } from 'esbuild';

/**
 * The guest agent bundled as a guest image would ship it: one build, its entry `main.mjs` and the
 * chunks that entry imports on demand (`chunks/`). What the first order does not need (backups and
 * their S3 client, guest logs, modules, the other engines and their client libraries, SSM) is in
 * chunks the agent never reads unless an order needs them: node compiles what it reads, and the
 * agent's start is on the path of every instance create (one file of everything took ~0.4 s of CPU
 * to compile and 80 MB at rest; the entry and one engine's chunk ~0.2 s and 70 MB).
 *
 * Each build lands in a directory named after its content (`agent/<image id>/`), never rewritten:
 * an agent started from an earlier build (one adopted across a restart of the local cloud) still
 * imports its own chunks when it first needs them.
 */
export async function bundleAgent(root: string, outDir: string): Promise<string> {
  const images = join(outDir, 'agent');
  await mkdir(images, { recursive: true });
  const staging = await mkdtemp(join(images, '.build-'));
  try {
    await bundleNodeEntry(join(root, 'agent', 'main.ts'), join(staging, 'main.mjs'));
    const image = join(images, await imageIdOf(staging));
    if (existsSync(image)) await rm(staging, { recursive: true, force: true });
    else await rename(staging, image);
    return join(image, 'main.mjs');
  } catch (err) {
    await rm(staging, { recursive: true, force: true });
    throw err;
  }
}

/**
 * `entry` and everything it imports bundled into `outfile` (and its chunks beside it, `chunks/`)
 * exactly as the guest image is built (bench/backup.ts runs the agent's backup code from such a
 * bundle, as production runs it).
 */
export async function bundleNodeEntry(entry: string, outfile: string): Promise<string> {
  await build({
    entryPoints: { [basenameWithoutExt(outfile)]: entry },
    outdir: dirname(outfile),
    outExtension: { '.js': '.mjs' },
    // `await import()` of a module becomes a chunk of its own, read only when first imported.
    splitting: true,
    chunkNames: 'chunks/[name]-[hash]',
    bundle: true,
    platform: 'node',
    format: 'esm',
    // The agent runs on the Node the project pins (22), as the functions run on nodejs22.x.
    target: 'node22',
    // Linked, not loaded: node reads a source map only when started with --enable-source-maps,
    // which parsed all 8 MB of them at every agent start (~0.2 s, 20 MB). A stack trace of the
    // agent names bundle lines; the maps beside the files turn them back into sources.
    sourcemap: 'linked',
    logLevel: 'silent',
    // Some dependencies still call require(); an ESM bundle needs one.
    banner: { js: "import { createRequire } from 'module'; const require = createRequire(import.meta.url);" },
  });
  // esbuild's JS API keeps its Go service running (~170 MB) until told to stop.
  await stop();
  return outfile;
}

function basenameWithoutExt(path: string): string {
  return (path.split('/').at(-1) ?? path).replace(/\.[^.]+$/, '');
}

/**
 * A guest image's id: the sha256 of its code (every `.mjs` file of the bundle's directory, by
 * path) written as a UUID (RFC 9562 version 8, the one for ids made by one's own rule), so that
 * an admin's rebuild names what the guest will run, Glance-style, and a new bundle (other agent
 * code) is another id.
 */
async function imageIdOf(dir: string): Promise<string> {
  const hash = createHash('sha256');
  for (const file of await codeFiles(dir)) {
    hash.update(`${relative(dir, file)}\0`);
    hash.update(await readFile(file));
    hash.update('\0');
  }
  const hex = hash.digest('hex').slice(0, 32).split('');
  hex[12] = '8'; // version 8
  hex[16] = ((Number.parseInt(hex[16] ?? '0', 16) & 0x3) | 0x8).toString(16); // RFC variant
  const h = hex.join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

async function codeFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile() && e.name.endsWith('.mjs'))
    .map((e) => join(e.parentPath, e.name))
    .sort();
}

/** The local cloud's guest image: the bundle (its entry's path) and the id its code gives it. */
export async function localImageOf(bundle: string): Promise<{ id: string; bundle: string }> {
  return { id: await imageIdOf(dirname(bundle)), bundle };
}

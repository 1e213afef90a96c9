import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';

// The handlers a local cloud built, kept for the next start with the same sources.
//
// Every cloud start (`npm start`, and the six whole clouds the test suite starts) used to bundle
// all handler modules again through serverless-esbuild: 10–20 s of a ~30 s start on 2 cores. A
// build now stays under `.local/build/handlers/<id>/` with a manifest of the files it was made
// from: every source its bundles' source maps name (outside node_modules, which the lock file
// stands for), and the build's configuration. A start whose files all hash as the manifest says
// reuses that build and serverless-esbuild skips its own (serverless/esbuild-prebuilt.cjs). A file
// a handler starts importing is caught too: the importing file changed.
//
// Clouds using a build name themselves in its `users/<pid>`; only builds no live process uses
// are pruned, beyond the newest KEEP.

const KEEP = 3;
/** How close to a build's start a file may have changed and still be trusted as bundled. */
const EDIT_MARGIN_MS = 2_000;
/** Files that shape every bundle without being one of its sources. */
const CONFIGURATION = ['serverless.yml', 'serverless', 'package.json', 'package-lock.json', 'tsconfig.json'];

export interface HandlerBuild {
  /** serverless-esbuild's work folder, absolute. */
  dir: string;
  /** True when the bundles are already there: serverless-esbuild must not build. */
  prebuilt: boolean;
  /** Once the cloud serves: records what a fresh build was made from, so the next start may reuse it. */
  seal(): Promise<void>;
  /** At stop: this cloud no longer uses the build (a private one is removed). */
  release(): Promise<void>;
}

interface Manifest {
  /** Path (relative to the repository) → sha256 of its contents. */
  files: Record<string, string>;
}

const MANIFEST = 'manifest.json';

async function hashOf(path: string): Promise<string | undefined> {
  try {
    return createHash('sha256')
      .update(await readFile(path))
      .digest('hex');
  } catch {
    return undefined;
  }
}

async function filesUnder(root: string, path: string): Promise<string[]> {
  const full = join(root, path);
  const info = await stat(full).catch(() => undefined);
  if (!info) return [];
  if (!info.isDirectory()) return [path];
  const entries = await readdir(full, { withFileTypes: true });
  const nested = await Promise.all(entries.map((e) => filesUnder(root, join(path, e.name))));
  return nested.flat();
}

const configurationFiles = async (root: string) =>
  (await Promise.all(CONFIGURATION.map((p) => filesUnder(root, p)))).flat();

async function mapFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  return entries.filter((e) => e.isFile() && e.name.endsWith('.map')).map((e) => join(e.parentPath, e.name));
}

/** Every repository file the bundles under `dir` were made from, read from their source maps. */
export async function bundleSources(root: string, dir: string): Promise<string[]> {
  const sources = new Set<string>();
  for (const map of await mapFiles(dir)) {
    const { sources: named = [] } = JSON.parse(await readFile(map, 'utf8')) as { sources?: string[] };
    for (const source of named) {
      const path = relative(root, resolve(dirname(map), source));
      if (!path.startsWith('..') && !path.split('/').includes('node_modules')) sources.add(path);
    }
  }
  return [...sources].sort();
}

/** Whether every file of a manifest still hashes as it says, and no configuration file is new. */
async function matches(
  root: string,
  manifest: Manifest,
  seen: Map<string, Promise<string | undefined>>,
  configuration: string[],
) {
  for (const [path, hash] of Object.entries(manifest.files)) {
    let current = seen.get(path);
    if (!current) {
      current = hashOf(join(root, path));
      seen.set(path, current);
    }
    if ((await current) !== hash) return false;
  }
  // A configuration file added since (a new file under serverless/) changes the build too.
  return configuration.every((path) => path in manifest.files);
}

const alive = (pid: number) => existsSync(`/proc/${pid}`) || pid === process.pid;

async function users(dir: string): Promise<number[]> {
  const names = await readdir(join(dir, 'users')).catch(() => [] as string[]);
  return names.map(Number).filter((pid) => Number.isInteger(pid) && alive(pid));
}

async function readManifest(dir: string): Promise<{ manifest: Manifest; at: number } | undefined> {
  try {
    const path = join(dir, MANIFEST);
    const [text, info] = await Promise.all([readFile(path, 'utf8'), stat(path)]);
    return { manifest: JSON.parse(text) as Manifest, at: info.mtimeMs };
  } catch {
    return undefined;
  }
}

/** Removes builds nobody uses: unsealed ones (a start that died) and sealed ones past the newest KEEP. */
async function prune(cache: string, keep: string) {
  const names = await readdir(cache).catch(() => [] as string[]);
  const builds = await Promise.all(
    names.map(async (name) => ({ dir: join(cache, name), sealed: await readManifest(join(cache, name)) })),
  );
  const sealed = builds.filter((b) => b.sealed).sort((a, b) => (b.sealed?.at ?? 0) - (a.sealed?.at ?? 0));
  const stale = [...builds.filter((b) => !b.sealed), ...sealed.slice(KEEP)];
  for (const { dir } of stale) {
    if (dir === keep || (await users(dir)).length > 0) continue;
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * The build a starting cloud uses: a kept one whose sources are unchanged, or a new one that
 * `seal()` keeps once the cloud is up. `watch` (handlers rebuilt on every edit) gets a private
 * build that is never kept.
 */
export async function handlerBuild(
  root: string,
  opts: { id: string; watch: boolean },
): Promise<HandlerBuild> {
  const cache = join(root, '.local', 'build', 'handlers');
  await mkdir(cache, { recursive: true });
  if (opts.watch) {
    const dir = join(root, '.local', 'build', `watch-${opts.id}`);
    return {
      dir,
      prebuilt: false,
      seal: async () => {},
      release: () => rm(dir, { recursive: true, force: true }),
    };
  }
  const claim = async (dir: string) => {
    await mkdir(join(dir, 'users'), { recursive: true });
    await writeFile(join(dir, 'users', String(process.pid)), '');
  };
  const release = (dir: string) => async () => {
    await rm(join(dir, 'users', String(process.pid)), { force: true });
  };

  const seen = new Map<string, Promise<string | undefined>>();
  const configuration = await configurationFiles(root);
  const candidates = await Promise.all(
    (await readdir(cache)).map(async (name) => ({
      dir: join(cache, name),
      sealed: await readManifest(join(cache, name)),
    })),
  );
  candidates.sort((a, b) => (b.sealed?.at ?? 0) - (a.sealed?.at ?? 0));
  for (const { dir, sealed } of candidates) {
    if (sealed && (await matches(root, sealed.manifest, seen, configuration))) {
      await claim(dir);
      return { dir, prebuilt: true, seal: async () => {}, release: release(dir) };
    }
  }

  const dir = join(cache, `${Date.now().toString(36)}-${process.pid}`);
  await claim(dir);
  const started = Date.now();
  return {
    dir,
    prebuilt: false,
    seal: async () => {
      const paths = [...(await bundleSources(root, dir)), ...(await configurationFiles(root))];
      const files: Record<string, string> = {};
      for (const path of paths) {
        const full = join(root, path);
        // A file edited while the build ran may not be what was bundled: keep nothing then. A
        // file's time comes from the kernel's coarse clock, a few ms behind Date.now(): a margin.
        const info = await stat(full).catch(() => undefined);
        const hash = info && info.mtimeMs < started - EDIT_MARGIN_MS ? await hashOf(full) : undefined;
        if (!hash) return;
        files[path] = hash;
      }
      const temporary = join(dir, `${MANIFEST}.${process.pid}`);
      await writeFile(temporary, JSON.stringify({ files } satisfies Manifest));
      await rename(temporary, join(dir, MANIFEST));
      await prune(cache, dir);
    },
    release: release(dir),
  };
}

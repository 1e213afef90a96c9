import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { bundleSources, handlerBuild } from '../../local/handler-cache.ts';

// A repository in miniature: a handler, a library file it imports, the build's configuration;
// "building" writes a bundle and its source map as serverless-esbuild would.
let root = '';
const past = new Date(Date.now() - 60_000);

async function put(path: string, text: string) {
  await mkdir(join(root, path, '..'), { recursive: true });
  await writeFile(join(root, path), text);
  await utimes(join(root, path), past, past);
}

async function build(dir: string, sources: string[]) {
  const out = join(dir, '.build', 'functions', 'api');
  await mkdir(out, { recursive: true });
  await writeFile(join(out, 'h.mjs'), '// bundle');
  const relativeSources = sources.map(
    (s) => `../../../${'../'.repeat(dir.replace(`${root}/`, '').split('/').length)}${s}`,
  );
  await writeFile(join(out, 'h.mjs.map'), JSON.stringify({ version: 3, sources: relativeSources }));
}

async function start() {
  const b = await handlerBuild(root, { id: 'test', watch: false });
  if (!b.prebuilt) await build(b.dir, ['functions/api/h.ts', 'lib/a.ts', 'node_modules/zod/index.js']);
  await b.seal();
  return b;
}

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'handler-cache-'));
  await put('functions/api/h.ts', 'import "../../lib/a.ts"');
  await put('lib/a.ts', 'export const a = 1;');
  await put('serverless.yml', 'service: x');
  await put('serverless/timeouts.cjs', 'module.exports = 1');
  await put('package-lock.json', '{}');
});
afterEach(() => rm(root, { recursive: true, force: true }));

describe('the local cloud’s handler build', () => {
  it('names the repository files a build was made from, not node_modules', async () => {
    const dir = join(root, '.local', 'build', 'handlers', 'x');
    await build(dir, ['functions/api/h.ts', 'lib/a.ts', 'node_modules/zod/index.js']);
    expect(await bundleSources(root, dir)).toEqual(['functions/api/h.ts', 'lib/a.ts']);
  });

  it('reuses a build while its sources and configuration are unchanged', async () => {
    const first = await start();
    expect(first.prebuilt).toBe(false);
    await first.release();
    const second = await start();
    expect(second).toMatchObject({ prebuilt: true, dir: first.dir });
  });

  it('builds again when a bundled source, a configuration file or the lock file changes, or a configuration file is added', async () => {
    let last = await start();
    for (const change of [
      () => put('lib/a.ts', 'export const a = 2;'),
      () => put('serverless/timeouts.cjs', 'module.exports = 2'),
      () => put('package-lock.json', '{"v":2}'),
      () => put('serverless/new.cjs', 'module.exports = 3'),
    ]) {
      await change();
      const next = await start();
      expect(next.prebuilt).toBe(false);
      expect(next.dir).not.toBe(last.dir);
      last = next;
    }
  });

  it('keeps nothing when a source was edited while the build ran', async () => {
    const b = await handlerBuild(root, { id: 'test', watch: false });
    await build(b.dir, ['functions/api/h.ts', 'lib/a.ts']);
    await writeFile(join(root, 'lib/a.ts'), 'export const a = 9;');
    await b.seal();
    expect(existsSync(join(b.dir, 'manifest.json'))).toBe(false);
    expect((await start()).prebuilt).toBe(false);
  });

  it('prunes old builds nobody uses, never one a running cloud uses', async () => {
    const inUse = await start(); // never released: this process uses it
    const dirs = [inUse.dir];
    for (let i = 0; i < 4; i++) {
      await put('lib/a.ts', `export const a = ${10 + i};`);
      const b = await start();
      await b.release();
      dirs.push(b.dir);
    }
    const left = (await readdir(join(root, '.local', 'build', 'handlers'))).map((n) =>
      join(root, '.local', 'build', 'handlers', n),
    );
    expect(left).toContain(inUse.dir);
    expect(left).toEqual(expect.arrayContaining(dirs.slice(-3)));
    expect(left).not.toContain(dirs[1]);
  });

  it('gives a watching cloud a private build, removed at its stop', async () => {
    const b = await handlerBuild(root, { id: 'w', watch: true });
    expect(b.prebuilt).toBe(false);
    await build(b.dir, ['lib/a.ts']);
    await b.release();
    expect(existsSync(b.dir)).toBe(false);
  });
});

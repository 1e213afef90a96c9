import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { MgmtActionRequest } from '../../lib/instances/schemas.ts';
import { validate } from '../../lib/validation.ts';
import { localImageOf } from '../../local/agent-bundle.ts';

// The local cloud's guest image is its agent bundle (an entry and its chunks), named by the sha256
// of its code as a UUID: the same code is the same image, other code another one, and the id is
// one Trove's rebuild schema takes.
const dir = await mkdtemp(join(tmpdir(), 'troveless-image-'));
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('localImageOf', () => {
  it('names a bundle by its code, as a version-8 UUID the rebuild body accepts', async () => {
    const a = await bundle('a', {
      'main.mjs': 'import("./chunks/x.mjs")',
      'chunks/x.mjs': 'export const x = 1',
    });
    const image = await localImageOf(a);
    expect(image.bundle).toBe(a);
    expect(image.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect((await localImageOf(a)).id).toBe(image.id);
    expect(validate(MgmtActionRequest, { rebuild: { image_id: image.id } }).rebuild).toEqual({
      image_id: image.id,
    });
  });

  it('is another image when any chunk differs, the same when only a source map does', async () => {
    const files = { 'main.mjs': 'import("./chunks/x.mjs")', 'chunks/x.mjs': 'export const x = 1' };
    const id = (await localImageOf(await bundle('b', files))).id;
    const otherChunk = await bundle('c', { ...files, 'chunks/x.mjs': 'export const x = 2' });
    expect((await localImageOf(otherChunk)).id).not.toBe(id);
    const otherMap = await bundle('d', { ...files, 'chunks/x.mjs.map': '{"version":3}' });
    expect((await localImageOf(otherMap)).id).toBe(id);
  });
});

/** A bundle's directory with these files; resolves to its entry's path. */
async function bundle(name: string, files: Record<string, string>): Promise<string> {
  for (const [path, text] of Object.entries(files)) {
    await mkdir(dirname(join(dir, name, path)), { recursive: true });
    await writeFile(join(dir, name, path), text);
  }
  return join(dir, name, 'main.mjs');
}

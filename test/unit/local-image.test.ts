import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { MgmtActionRequest } from '../../lib/instances/schemas.ts';
import { validate } from '../../lib/validation.ts';
import { localImageOf } from '../../local/agent-bundle.ts';

// The local cloud's guest image is its agent bundle, named by the bundle's sha256 as a UUID: the
// same bundle is the same image, another bundle another one, and the id is one Trove's rebuild
// schema takes.
const dir = await mkdtemp(join(tmpdir(), 'troveless-image-'));
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('localImageOf', () => {
  it('names a bundle by its content, as a version-8 UUID the rebuild body accepts', async () => {
    const a = join(dir, 'a.mjs');
    const b = join(dir, 'b.mjs');
    await writeFile(a, 'console.log("agent 1")');
    await writeFile(b, 'console.log("agent 2")');
    const image = await localImageOf(a);
    expect(image.bundle).toBe(a);
    expect(image.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect((await localImageOf(a)).id).toBe(image.id);
    expect((await localImageOf(b)).id).not.toBe(image.id);
    expect(validate(MgmtActionRequest, { rebuild: { image_id: image.id } }).rebuild).toEqual({
      image_id: image.id,
    });
  });
});

import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { build, stop } from 'esbuild';

/**
 * The guest agent bundled into one ESM file, as a guest image would ship it: it starts in about
 * half a second where running the TypeScript sources through tsx took one and a half, and that
 * start is on the path of every instance create.
 */
export function bundleAgent(root: string, outDir: string): Promise<string> {
  return bundleNodeEntry(join(root, 'agent', 'main.ts'), join(outDir, 'agent', 'main.mjs'));
}

/**
 * `entry` and everything it imports bundled into `outfile` exactly as the guest image is built
 * (bench/backup.ts runs the agent's backup code from such a bundle, as production runs it).
 */
export async function bundleNodeEntry(entry: string, outfile: string): Promise<string> {
  await build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    // The agent runs on the Node the project pins (22), as the functions run on nodejs22.x.
    target: 'node22',
    sourcemap: 'linked',
    logLevel: 'silent',
    // Some dependencies still call require(); an ESM bundle needs one.
    banner: { js: "import { createRequire } from 'module'; const require = createRequire(import.meta.url);" },
  });
  // esbuild's JS API keeps its Go service running (~170 MB) until told to stop.
  await stop();
  return outfile;
}

/**
 * The local cloud's guest image, named after its bundle: the bundle's sha256 written as a UUID
 * (RFC 9562 version 8, the one for ids made by one's own rule), so that an admin's rebuild
 * names what the guest will run, Glance-style, and a new bundle (other agent code) is another id.
 */
export async function localImageOf(bundle: string): Promise<{ id: string; bundle: string }> {
  const hex = createHash('sha256')
    .update(await readFile(bundle))
    .digest('hex')
    .slice(0, 32)
    .split('');
  hex[12] = '8'; // version 8
  hex[16] = ((Number.parseInt(hex[16] ?? '0', 16) & 0x3) | 0x8).toString(16); // RFC variant
  const h = hex.join('');
  return {
    id: `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`,
    bundle,
  };
}

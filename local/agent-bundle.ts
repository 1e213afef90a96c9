import { join } from 'node:path';
import { build, stop } from 'esbuild';

/**
 * The guest agent bundled into one ESM file, as a guest image would ship it: it starts in about
 * half a second where running the TypeScript sources through tsx took one and a half, and that
 * start is on the path of every instance create.
 */
export async function bundleAgent(root: string, outDir: string): Promise<string> {
  const outfile = join(outDir, 'agent', 'main.mjs');
  await build({
    entryPoints: [join(root, 'agent', 'main.ts')],
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

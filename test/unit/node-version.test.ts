import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

// The project's scripts run on the Node that package.json pins as a package (node_modules/.bin/node,
// first on the PATH of every npm script), whatever Node the machine has; Lambda runs the same major.
const root = resolve(import.meta.dirname, '../..');
const pkg = JSON.parse(readFileSync(resolve(root, 'package.json'), 'utf8')) as {
  engines: { node: string };
  optionalDependencies: Record<string, string>;
};
const template = parse(readFileSync(resolve(root, 'serverless.yml'), 'utf8')) as {
  provider: { runtime: string };
  custom: { esbuild: { target: string } };
};
const pinned = pkg.optionalDependencies[`node-${process.platform}-${process.arch}`];
const numbers = (version: string) =>
  version
    .replace(/^v|^>=/, '')
    .split('.')
    .map(Number);
const major = (version: string) => numbers(version)[0];

describe('the Node the project runs on', () => {
  it('is the pinned release, in the test worker and in a `node` its scripts spawn by name', () => {
    expect(pinned, `no Node package pinned for ${process.platform}-${process.arch}`).toBeDefined();
    expect(process.version).toBe(`v${pinned}`);
    const child = execFileSync('node', ['-p', 'process.version'], { encoding: 'utf8' }).trim();
    expect(child).toBe(`v${pinned}`);
  });

  it('is the major Lambda runs the functions on, and the one their bundles target', () => {
    expect(template.provider.runtime).toBe(`nodejs${major(process.version)}.x`);
    expect(template.custom.esbuild.target).toBe(`node${major(process.version)}`);
  });

  it('satisfies package.json engines', () => {
    expect(pkg.engines.node).toMatch(/^>=\d+\.\d+\.\d+$/);
    const want = numbers(pkg.engines.node);
    const have = numbers(process.version);
    const first = have.findIndex((n, i) => n !== want[i]);
    expect(first === -1 || (have[first] ?? 0) > (want[first] ?? 0)).toBe(true);
  });
});

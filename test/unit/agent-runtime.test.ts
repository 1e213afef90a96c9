import { describe, expect, it } from 'vitest';
import { AGENT_RUNTIME_ENV, systemdEnvironment } from '../../lib/compute/agent-runtime.ts';

describe("the agent's runtime environment", () => {
  it('is written as a systemd drop-in, one quoted Environment= line a variable', () => {
    expect(systemdEnvironment({ MALLOC_ARENA_MAX: '2', NODE_OPTIONS: '--a=1 --b' })).toBe(
      '[Service]\nEnvironment="MALLOC_ARENA_MAX=2"\nEnvironment="NODE_OPTIONS=--a=1 --b"\n',
    );
    expect(systemdEnvironment()).toContain(`Environment="NODE_OPTIONS=${AGENT_RUNTIME_ENV.NODE_OPTIONS}"`);
  });

  it('refuses what systemd would read otherwise than written (quotes, escapes, specifiers, newlines)', () => {
    for (const value of ['a"b', 'a\\b', '%h', '$HOME', 'a\nExecStart=/bin/sh'])
      expect(() => systemdEnvironment({ NODE_OPTIONS: value })).toThrow(/cannot be written/);
    expect(() => systemdEnvironment({ 'BAD NAME': '1' })).toThrow(/cannot be written/);
  });
});

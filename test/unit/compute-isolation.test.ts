import { describe, expect, it } from 'vitest';
import { AGENT_RUNTIME_ENV } from '../../lib/compute/agent-runtime.ts';
import { defaultPortFor } from '../../local/compute/addresses.ts';
import { renderTable } from '../../local/compute/firewall.ts';
import { agentEnvironment } from '../../local/compute/guests.ts';
import { userNameFor } from '../../local/compute/users.ts';

describe('compute host isolation, pure parts', () => {
  it('names an instance user after its server, short enough for useradd', () => {
    const name = userNameFor('srv-0123abcd-4567-89ab-cdef-0123456789ab');
    expect(name).toBe('tl-0123abcd4567');
    expect(name.length).toBeLessThanOrEqual(32);
  });

  it("marks its table with its host's compute dir, so that a host started later can tell an orphan", () => {
    const script = renderTable('troveless_abc', [], '/var/lib/troveless/compute');
    expect(script).toContain('table inet troveless_abc {\n  comment "/var/lib/troveless/compute"\n');
  });

  it('puts engines on their standard ports', () => {
    expect([defaultPortFor('mysql'), defaultPortFor('mariadb'), defaultPortFor('postgresql')]).toEqual([
      3306, 3306, 5432,
    ]);
    expect(defaultPortFor('redis')).toBe(6379);
    expect(() => defaultPortFor('mongodb')).toThrow(/no standard port/);
  });

  it('writes one table of its own: allowed_cidrs on the address and port, 0.0.0.0/0 by default', () => {
    const script = renderTable('troveless_abc', [
      {
        key: 'a1',
        address: '127.77.0.2',
        port: 5432,
        allowedCidrs: ['10.0.0.0/8', '127.10.0.0/16'],
        uid: 999,
      },
      { key: 'b2', address: '127.77.0.3', port: 6379 },
    ]);
    // Re-creating the table atomically, never naming another table.
    expect(script.split('\n').slice(0, 3)).toEqual([
      'table inet troveless_abc',
      'delete table inet troveless_abc',
      'table inet troveless_abc {',
    ]);
    expect(script.match(/table inet (\S+)/g)?.every((t) => t.endsWith('troveless_abc'))).toBe(true);
    expect(script).toContain('ip daddr 127.77.0.2 tcp dport 5432 jump instance_a1');
    expect(script).toContain('ip saddr { 10.0.0.0/8, 127.10.0.0/16 } accept');
    expect(script).toContain('ip saddr { 0.0.0.0/0 } accept');
    expect(script).toContain('meta skuid 999 ct state new ip daddr != 127.77.0.2 reject');
    expect(script).not.toMatch(/skuid undefined/);
  });

  it("opens a cluster member's bus port to its peers only, restricted like its engine port", () => {
    const script = renderTable('troveless_abc', [
      { key: 'a1', address: '127.77.0.2', port: 6379, uid: 901, peers: ['b2'], extraPorts: [16379] },
      { key: 'b2', address: '127.77.0.3', port: 6379, uid: 902, peers: ['a1'], extraPorts: [16379] },
    ]);
    expect(script).toContain('ip daddr 127.77.0.2 tcp dport { 6379, 16379 } jump instance_a1');
    expect(script).toContain(
      'meta skuid 901 ct state new ip daddr 127.77.0.3 tcp dport { 6379, 16379 } ct mark set 0x7e91 accept',
    );
    expect(script).toContain('meta skuid 902 ct state new ip daddr != 127.77.0.3 reject');
  });

  it("builds the agent's environment from the host's settings and an allow-list (it takes no caller's spec)", () => {
    const env = agentEnvironment({
      AWS_ENDPOINT_URL_SQS: 'http://127.0.0.1:9324',
      TROVELESS_REPORT_INTERVAL: '2',
      TROVELESS_TOKEN_SECRET: 'secret',
      TROVELESS_GUEST_KEK: 'kek',
      TROVELESS_COMPUTE_SECRET: 'host',
      TROVELESS_CA_FILE: '/state/ca.json',
      NODE_OPTIONS: '--inspect',
      LD_PRELOAD: '/tmp/x.so',
    });
    expect(env.AWS_ENDPOINT_URL_SQS).toBe('http://127.0.0.1:9324');
    expect(env.TROVELESS_REPORT_INTERVAL).toBe('2');
    // The runtime settings every agent runs with (as on EC2), never the caller's node options.
    expect(env.NODE_OPTIONS).toBe(AGENT_RUNTIME_ENV.NODE_OPTIONS);
    expect(env.MALLOC_ARENA_MAX).toBe(AGENT_RUNTIME_ENV.MALLOC_ARENA_MAX);
    for (const name of [
      'LD_PRELOAD',
      'TROVELESS_TOKEN_SECRET',
      'TROVELESS_GUEST_KEK',
      'TROVELESS_COMPUTE_SECRET',
      'TROVELESS_CA_FILE',
    ])
      expect(env[name]).toBeUndefined();
  });
});

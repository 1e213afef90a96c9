import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { createConnection, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { allocateAddress } from '../../../local/compute/addresses.ts';
import { renderTable } from '../../../local/compute/firewall.ts';
import { Writers } from '../../../local/compute/writers.ts';

// The local compute host's writer endpoint (issue 12 #5) without engines: two "sources" that
// answer with their own name; the forwarder leads to one, then the other; connections to the
// old one end at the move; a host started again on the same records listens again; removal
// leaves no listener, record or address behind.

const taken = new Set<string>();

async function namedServer(name: string): Promise<{ server: Server; address: string; port: number }> {
  const address = await allocateAddress(taken, 15432);
  const server = createServer((s) => s.end(name));
  await new Promise<void>((ok) => server.listen(15432, address, () => ok()));
  return { server, address, port: 15432 };
}

function ask(address: string, port: number): Promise<string> {
  return new Promise((ok, fail) => {
    const s = createConnection({ host: address, port });
    let text = '';
    s.on('data', (d) => {
      text += d.toString();
    });
    s.on('end', () => ok(text));
    s.on('error', fail);
  });
}

describe('the compute host writer endpoint', () => {
  let dir: string;
  let a: Awaited<ReturnType<typeof namedServer>>;
  let b: Awaited<ReturnType<typeof namedServer>>;
  const id = '0b7a4b2e-36a1-4f7e-9b2a-7d1c2e3f4a5b';

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'writers-'));
    a = await namedServer('a');
    b = await namedServer('b');
  });
  afterAll(async () => {
    a?.server.close();
    b?.server.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('leads to the source of the moment, and comes back with the host', async () => {
    const writers = new Writers(dir, taken, () => {});
    const w = await writers.point(id, 'srv-a', { address: a.address, port: a.port });
    expect(w.address).not.toBe(a.address);
    expect(w.port).toBe(a.port);
    expect(await ask(w.address, w.port)).toBe('a');
    // Idempotent: the same target again changes nothing.
    expect(await writers.point(id, 'srv-a', { address: a.address, port: a.port })).toEqual(w);

    const moved = await writers.point(id, 'srv-b', { address: b.address, port: b.port });
    expect(moved.address).toBe(w.address);
    expect(await ask(w.address, w.port)).toBe('b');

    // The host stops (listeners close, records stay) and starts again on the same records.
    await writers.closeAll();
    await expect(ask(w.address, w.port)).rejects.toThrow();
    const again = new Writers(dir, new Set(), () => {});
    expect((await again.load()).map((r) => r.id)).toEqual([id]);
    expect(await ask(w.address, w.port)).toBe('b');

    await again.remove(id);
    await expect(ask(w.address, w.port)).rejects.toThrow();
    expect(await readdir(dir)).toEqual([]);
  });

  it('is reached from the source’s allowed_cidrs only, and the source admits its forwarder', () => {
    const script = renderTable('t', [
      { key: 's1', address: '127.77.0.5', port: 3306, allowedCidrs: ['10.0.0.0/8'], admit: ['127.77.0.9'] },
      { key: 'w1', address: '127.77.0.9', port: 3306, allowedCidrs: ['10.0.0.0/8'] },
    ]);
    const chain = (name: string) => script.slice(script.indexOf(`chain ${name} {`)).split('\n  }')[0];
    expect(chain('instance_s1')).toContain('ip saddr { 127.77.0.9 } accept');
    expect(chain('instance_w1')).toContain('ip saddr { 10.0.0.0/8 } accept');
    expect(chain('instance_w1')).not.toContain('127.77.0.5');
    expect(script).toContain('ip daddr 127.77.0.9 tcp dport 3306 jump instance_w1');
  });
});

import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/**
 * The ports a free port is picked from: below the kernel's ephemeral range, which every client
 * socket on the machine draws its local port from (LOCAL_STACK.md pitfall 9). A port picked from
 * that range could be taken by any outgoing connection (a test's own, an engine's, the SDK's)
 * between the pick and the bind, and a service started on it then exits with EADDRINUSE, as
 * DynamoDB Local once did in CI; below it, only another listener could, and every listener of the
 * local cloud picks here, at random, after checking the port binds.
 */
function pickRange(): { low: number; high: number } | undefined {
  try {
    const [ephemeralLow] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8')
      .trim()
      .split(/\s+/)
      .map(Number);
    if (ephemeralLow && ephemeralLow > 12_000) return { low: 10_000, high: ephemeralLow - 1 };
  } catch {
    // not Linux: the kernel's choice
  }
  return undefined;
}

const range = pickRange();
/** Handed out by this process already: not handed out again while it may not be bound yet. */
const handedOut = new Set<number>();

function bindable(port: number): Promise<number | undefined> {
  return new Promise((ok) => {
    const srv = createServer();
    srv.once('error', () => ok(undefined));
    srv.listen(port, '127.0.0.1', () => {
      const address = srv.address();
      srv.close(() => ok(typeof address === 'object' && address ? address.port : undefined));
    });
  });
}

/**
 * A port that was free a moment ago on 127.0.0.1, outside the ephemeral range where the system
 * allows it. Another listener can still take it before it is used, so callers bind promptly.
 */
export async function freePort(): Promise<number> {
  for (let attempt = 0; range && attempt < 50; attempt++) {
    const port = range.low + Math.floor(Math.random() * (range.high - range.low + 1));
    if (handedOut.has(port)) continue;
    // Taken before the check, so that callers asking side by side never get the same port.
    handedOut.add(port);
    if ((await bindable(port)) === port) return port;
    handedOut.delete(port);
  }
  const port = await bindable(0);
  if (port === undefined) throw new Error('no free port on 127.0.0.1');
  return port;
}

import { createServer } from 'node:net';

// Each server gets its own address in 127.0.0.0/8 (the whole block is the loopback interface's
// on Linux, so nothing has to be configured) and its engine listens there on its standard port,
// as a guest of its own would. 127.0.0.1 stays the control plane's.

const NETWORK = { first: [127, 77, 0, 2], size: 256 * 254 } as const;

export const DEFAULT_PORTS: Record<string, number> = {
  mysql: 3306,
  mariadb: 3306,
  postgresql: 5432,
  redis: 6379,
};

export function defaultPortFor(manager: string): number {
  const port = DEFAULT_PORTS[manager];
  if (!port) throw new Error(`no standard port known for datastore manager ${manager}`);
  return port;
}

function canBind(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen({ port, host, exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

function nth(n: number): string {
  // 127.77.x.y with y in 2..255: x.0 and x.1 are skipped, so no address ends in .0 or .1.
  return `127.77.${Math.floor(n / 254)}.${(n % 254) + 2}`;
}

/**
 * An address in 127.77.0.0/16 that no recorded server owns and where `port` can be bound now.
 * The caller's `taken` gets it before anything else is awaited, so concurrent launches never share one.
 */
export async function allocateAddress(taken: Set<string>, port: number): Promise<string> {
  const start = Math.floor(Math.random() * NETWORK.size);
  for (let i = 0; i < NETWORK.size; i++) {
    const address = nth((start + i) % NETWORK.size);
    if (taken.has(address)) continue;
    taken.add(address);
    if (await canBind(port, address)) return address;
    taken.delete(address);
  }
  throw new Error('no free address in 127.77.0.0/16');
}

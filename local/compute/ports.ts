import { createServer } from 'node:net';

// Guest ports come from a range below Linux's ephemeral range (32768-60999): a port chosen there
// can be taken by any outgoing connection before the engine binds it (LOCAL_STACK.md pitfall 9).
export const GUEST_PORT_RANGE = { first: 20000, last: 32000 } as const;

function canBind(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen({ port, host, exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

/**
 * A port in the guest range that no recorded guest owns and that can be bound right now. The
 * caller adds it to `taken` before awaiting anything else, so concurrent launches never share one.
 */
export async function allocatePort(taken: Set<number>, host = '127.0.0.1'): Promise<number> {
  const { first, last } = GUEST_PORT_RANGE;
  const size = last - first + 1;
  const start = Math.floor(Math.random() * size);
  for (let i = 0; i < size; i++) {
    const port = first + ((start + i) % size);
    if (taken.has(port)) continue;
    taken.add(port);
    if (await canBind(port, host)) return port;
    taken.delete(port);
  }
  throw new Error(`no free port in ${first}-${last}`);
}

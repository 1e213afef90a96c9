import { createServer } from 'node:net';

/**
 * A port that was free a moment ago on 127.0.0.1. Another process can still take it before it is
 * used (LOCAL_STACK.md pitfall 9), so callers bind promptly.
 */
export function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const srv = createServer();
    srv.once('error', fail);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      srv.close(() =>
        typeof address === 'object' && address ? ok(address.port) : fail(new Error('no port')),
      );
    });
  });
}

import { Agent, createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Request } from '@middy/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HttpEvent, HttpResult } from '../../lib/http/response.ts';

// The header is opt-in and read when the module loads, as a function's cold start reads it.
process.env.TROVELESS_SERVER_TIMING = 'true';
const { serverTiming, timed } = await import('../../lib/http/timing.ts');

const server = createServer((_req, res) => res.end('ok'));
let port = 0;
beforeAll(async () => {
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  port = (server.address() as AddressInfo).port;
});
afterAll(() => new Promise<void>((ok) => server.close(() => ok())));

const get = (agent: Agent) =>
  new Promise<void>((ok, fail) =>
    request({ host: '127.0.0.1', port, agent }, (res) => res.resume().on('end', ok))
      .on('error', fail)
      .end(),
  );

/** One request through the middleware, doing `work` meanwhile; its Server-Timing by name. */
async function served(work: (event: HttpEvent) => Promise<void>): Promise<Map<string, number>> {
  const middleware = serverTiming();
  const event = {} as HttpEvent;
  const req = { event, response: { statusCode: 200, headers: {} } } as unknown as Request<
    HttpEvent,
    HttpResult
  >;
  await middleware.before?.(req);
  await work(event);
  await middleware.after?.(req);
  const header = String(req.response?.headers?.['server-timing'] ?? '');
  return new Map([...header.matchAll(/([\w-]+);dur=([\d.]+)/g)].map(([, n, v]) => [String(n), Number(v)]));
}

describe('Server-Timing', () => {
  it('times each phase and counts the connections opened while serving: none once keep-alive holds one', async () => {
    const agent = new Agent({ keepAlive: true });
    const first = await served((event) => timed(event, 'get', () => get(agent)));
    expect(first.get('connections')).toBe(1);
    expect(first.get('get')).toBeGreaterThan(0);
    expect(first.get('handler')).toBeGreaterThanOrEqual(first.get('get') ?? 0);
    const second = await served((event) => timed(event, 'get', () => get(agent)));
    expect(second.get('connections')).toBe(0);
    agent.destroy();
  });

  it('counts a connection per call when the client does not keep them', async () => {
    const agent = new Agent({ keepAlive: false });
    const timings = await served(async () => {
      await get(agent);
      await get(agent);
    });
    expect(timings.get('connections')).toBe(2);
  });
});

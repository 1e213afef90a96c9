import { subscribe } from 'node:diagnostics_channel';
import type { MiddlewareObj } from '@middy/core';
import { Phases } from '../phases.ts';
import type { HttpEvent, HttpResult } from './response.ts';

// Opt-in (TROVELESS_SERVER_TIMING=true, which `npm run bench -- api` sets): every answer carries
// a Server-Timing header with how long the handler spent in each phase (token, rate limits, the
// route) and in all, so a bench tells the API's own work from the front end's and the tables'.
// Off by default: a deployment has no reason to tell clients how its time is spent.

const enabled = process.env.TROVELESS_SERVER_TIMING === 'true';
const timings = new WeakMap<HttpEvent, { phases: Phases; start: number; connections: number }>();

// Connections this process opened (to DynamoDB and the rest): with keep-alive a warm function
// opens none per request, so the header's `connections` (a count, not ms) shows whether it does.
let connections = 0;
if (enabled) subscribe('net.client.socket', () => connections++);

/** Runs `work`, adding its duration to the request's phase `name` when timing is on. */
export function timed<T>(event: HttpEvent, name: string, work: () => Promise<T>): Promise<T> {
  const timing = timings.get(event);
  return timing ? timing.phases.time(name, work) : work();
}

/** `name;dur=ms` per phase, then `handler` for all of it (RFC: Server-Timing, dur in ms). */
export function serverTimingHeader(phases: Phases, totalMs: number): string {
  return [...phases.ms, ['handler', totalMs] as const]
    .map(([name, ms]) => `${name};dur=${ms.toFixed(2)}`)
    .join(', ');
}

/** First in the chain, so that its `after` runs last and counts every other middleware. */
export function serverTiming(): MiddlewareObj<HttpEvent, HttpResult> {
  const stamp = (request: { event: HttpEvent; response: HttpResult | null | undefined }) => {
    const timing = timings.get(request.event);
    if (!timing || !request.response) return;
    request.response.headers = {
      ...request.response.headers,
      'server-timing': `${serverTimingHeader(timing.phases, performance.now() - timing.start)}, connections;dur=${connections - timing.connections}`,
    };
  };
  return {
    before: (request) => {
      if (enabled)
        timings.set(request.event, { phases: new Phases(), start: performance.now(), connections });
    },
    after: stamp,
    onError: stamp,
  };
}

import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { type WebSocket, WebSocketServer } from 'ws';
import { Doorbell } from '../../agent/doorbell.ts';
import { DOORBELL_HEADER } from '../../lib/guest/doorbell-token.ts';
import { openEnvelope, verifySignature } from '../../lib/guest/signing.ts';
import { waitUntil } from '../../local/wait.ts';

// The agent's side of the doorbell (agent/doorbell.ts) against a WebSocket server standing for
// API Gateway's: what it shows when it connects, what counts as a ring, and that it comes back,
// backs off and stops as it should.

const servers: WebSocketServer[] = [];
const stops: AbortController[] = [];

async function server(verify: (token: string | undefined) => boolean = () => true) {
  const seen: Array<string | undefined> = [];
  const sockets: WebSocket[] = [];
  const wss = new WebSocketServer({
    host: '127.0.0.1',
    port: 0,
    verifyClient: ({ req }, done) => {
      const token = req.headers[DOORBELL_HEADER] as string | undefined;
      seen.push(token);
      done(verify(token), 403);
    },
  });
  wss.on('connection', (socket) => sockets.push(socket));
  await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
  servers.push(wss);
  return { url: `ws://127.0.0.1:${(wss.address() as AddressInfo).port}`, seen, sockets };
}

function start(url: string, key: Buffer, options = {}) {
  const lines: string[] = [];
  const bell = new Doorbell(url, key, 'i-door', (line) => lines.push(line), {
    retryMs: [20, 40],
    steadyMs: 60_000,
    ...options,
  });
  const stop = new AbortController();
  stops.push(stop);
  return { bell, lines, stop, running: bell.run(stop.signal) };
}

afterEach(async () => {
  for (const s of stops.splice(0)) s.abort();
  for (const wss of servers.splice(0)) {
    for (const c of wss.clients) c.terminate();
    await new Promise((resolve) => wss.close(resolve));
  }
});

describe('the agent’s doorbell', () => {
  it('connects with a token sealed with its key, and counts its opening and every message as a ring', async () => {
    const key = randomBytes(32);
    const api = await server();
    const { bell } = start(api.url, key);
    await waitUntil('open', async () => bell.open || undefined);
    const envelope = openEnvelope(api.seen[0] ?? '');
    expect(envelope?.instance_id).toBe('i-door');
    expect(envelope && verifySignature(key, envelope)).toBe(true);
    expect(JSON.parse(envelope?.body ?? '{}')).toMatchObject({ method: 'doorbell', instance_id: 'i-door' });
    expect(bell.rings).toBe(1);
    const seen = bell.rings;
    const rung = bell.wait(seen, 60_000, new AbortController().signal);
    api.sockets[0]?.send('ring');
    await rung;
    expect(bell.rings).toBe(seen + 1);
  });

  it('wakes a wait when its connection closes, then connects again with a fresh token', async () => {
    const api = await server();
    const { bell } = start(api.url, randomBytes(32));
    await waitUntil('open', async () => bell.open || undefined);
    const waiting = bell.wait(bell.rings, 60_000, new AbortController().signal);
    api.sockets[0]?.terminate();
    await waiting;
    expect(bell.open).toBe(false);
    await waitUntil('open again', async () => (bell.open && api.seen.length === 2) || undefined);
    expect(api.seen[1]).not.toBe(api.seen[0]);
  });

  it('keeps trying a doorbell that refuses it, backing off, and says so once', async () => {
    const api = await server(() => false);
    const { bell, lines } = start(api.url, randomBytes(32));
    await waitUntil('three refused attempts', async () => api.seen.length >= 3 || undefined);
    expect(bell.open).toBe(false);
    expect(lines.filter((l) => l.startsWith('doorbell not connected'))).toHaveLength(1);
  });

  it('does not reconnect every moment when each connection is dropped as soon as it opens', async () => {
    const api = await server();
    const { bell } = start(api.url, randomBytes(32), { retryMs: [20, 200, 5_000] });
    const dropped = (socket: WebSocket) => socket.terminate();
    let n = 0;
    await waitUntil(
      'connections dropped at once until the wait is long',
      async () => {
        for (const s of api.sockets.slice(n)) dropped(s);
        n = api.sockets.length;
        return api.seen.length >= 3 || undefined;
      },
      { intervalMs: 5 },
    );
    // The third wait (5 s) is in force: no fourth attempt within the next 500 ms.
    const attempts = api.seen.length;
    await new Promise((r) => setTimeout(r, 500));
    expect(api.seen.length).toBe(attempts);
    expect(bell.open).toBe(false);
  });

  it('stops at once when asked, even with its connection open to a peer that no longer answers', async () => {
    const api = await server();
    const { bell, stop, running } = start(api.url, randomBytes(32));
    await waitUntil('open', async () => bell.open || undefined);
    // The peer reads nothing more: a close handshake with it would never end.
    (api.sockets[0] as unknown as { _socket: { pause(): void } })._socket.pause();
    stop.abort();
    await running;
    expect(bell.open).toBe(false);
  });
});

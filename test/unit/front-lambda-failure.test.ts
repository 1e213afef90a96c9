import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Front, startFront } from '../../local/front.ts';
import { freePort } from '../../local/ports.ts';

// serverless-offline answers a function that threw or timed out with 200 and the raw Lambda error
// (stack trace and local paths included). The front door answers as API Gateway would: 502, or 504
// for a timeout, in Trove's fault shape, and shows nothing of the error.

const answers: Record<string, string> = {
  '/timeout': JSON.stringify({
    errorMessage: '[504] - Lambda timeout.',
    errorType: 'LambdaTimeoutError',
    stackTrace: ['Error: [504] - Lambda timeout.', 'at file:///work/main/node_modules/x.js:1:1'],
  }),
  '/threw': JSON.stringify({
    errorMessage: 'boom',
    errorType: 'TypeError',
    stackTrace: ['at /work/lib/a.ts'],
  }),
  '/fine': JSON.stringify({ instance: { id: 'i-1', name: 'errorMessage' } }),
};

let upstream: Server;
let front: Front;

beforeAll(async () => {
  upstream = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(answers[req.url ?? ''] ?? '{}');
  });
  await new Promise<void>((ok) => upstream.listen(0, '127.0.0.1', ok));
  const { port } = upstream.address() as AddressInfo;
  front = await startFront({
    host: '127.0.0.1',
    port: await freePort(),
    upstream: new URL(`http://127.0.0.1:${port}`),
  });
});

afterAll(async () => {
  await front.close();
  await new Promise((ok) => upstream.close(ok));
});

async function get(path: string) {
  const res = await fetch(`${front.url}${path}`);
  return { status: res.status, text: await res.text() };
}

describe('the front door and a function that failed', () => {
  it('answers a timed-out function with 504 in Trove shape, no stack trace', async () => {
    const res = await get('/timeout');
    expect(res.status).toBe(504);
    expect(Object.values(JSON.parse(res.text))[0]).toMatchObject({ code: 504 });
    expect(res.text).not.toMatch(/stackTrace|node_modules|\/work\//);
  });

  it('answers a function that threw with 502', async () => {
    const res = await get('/threw');
    expect(res.status).toBe(502);
    expect(res.text).not.toMatch(/boom|stackTrace/);
  });

  it('passes an ordinary answer through unchanged', async () => {
    const res = await get('/fine');
    expect(res.status).toBe(200);
    expect(res.text).toBe(answers['/fine']);
  });
});

describe('the front door and a body that stops arriving', () => {
  it('answers a forwarded DELETE whose chunked body never ends with 400, after a moment', async () => {
    const { connect } = await import('node:net');
    const { port, hostname } = new URL(front.url);
    const answer = await new Promise<string>((ok, fail) => {
      const socket = connect(Number(port), hostname);
      const chunks: Buffer[] = [];
      const timer = setTimeout(() => {
        socket.destroy();
        fail(new Error('no answer in 10 s'));
      }, 10_000);
      socket.on('connect', () =>
        // Chunked, and not one chunk (not even the last, empty one) follows.
        socket.write(
          'DELETE /fine HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n',
        ),
      );
      socket.on('data', (c: Buffer) => chunks.push(c));
      socket.on('close', () => {
        clearTimeout(timer);
        ok(Buffer.concat(chunks).toString('latin1'));
      });
    });
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    expect(answer).toContain('"code":400');
  }, 15_000);
});

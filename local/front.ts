import {
  Agent,
  createServer,
  request as forward,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { Duplex } from 'node:stream';
import { faultBody } from '../lib/errors.ts';
import { decodeSegment, unroutablePath } from '../lib/http/edge.ts';

// The local API's front door, in front of serverless-offline, as API Gateway is in front of the
// functions. serverless-offline's hapi parses the path with WHATWG URL rules, which resolve `..`
// and `%2e%2e` before routing (so `DELETE .../databases/..` reached `DELETE /instances/{id}`),
// and it answers bad encodings, unknown methods and bad headers itself in hapi's shape, before
// any handler runs. Here every request is refused in Trove's shape unless it can be routed
// truthfully, and what is forwarded is a canonical path that no parser can read differently.

/** The methods routes exist for (OPTIONS answers as Trove's: `/` has it, others are its 404). */
const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);
const HOP_BY_HOP = ['connection', 'keep-alive', 'expect', 'upgrade', 'transfer-encoding', 'te', 'trailer'];
/** API Gateway's payload limit. */
const MAX_BODY = 10 * 1024 * 1024;
const TROVE_MAX_BODY = 114_688;

const REASONS: Record<number, string> = {
  400: 'Bad Request',
  405: 'Method Not Allowed',
  413: 'Payload Too Large',
};

/** How long a body may take to stop arriving before the request is answered anyway. */
const STALLED_BODY_MS = 5000;

function fault(res: ServerResponse, status: number, message: string, now = false): void {
  const body = JSON.stringify(faultBody(status, message));
  const send = () => {
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  };
  // Read (and drop) what the client is still sending before answering: closing on an unread
  // body resets the connection, and the client can lose the answer. Not for one declared over
  // our own limit; a smaller body hapi refused (its 1 MB payload limit: 413) is drained too.
  const req = res.req;
  if (now || req.complete || Number(req.headers['content-length'] ?? 0) > MAX_BODY) {
    // A stalled body is answered now: what may still come of it is read and dropped.
    if (now) req.resume();
    send();
    return;
  }
  // A body that never completes (a chunked one that stops) gets the answer after a moment.
  let sent = false;
  const once = () => {
    if (!sent) send();
    sent = true;
  };
  req.once('end', once);
  setTimeout(once, STALLED_BODY_MS).unref();
  req.resume();
}

/** An answer written straight to a socket the HTTP parser gave up on. */
const answered = new WeakSet<Duplex>();

function rawFault(socket: Duplex, status: number, message: string): void {
  // The parser can report the same socket again as more of a refused request arrives: one answer.
  if (answered.has(socket)) return;
  answered.add(socket);
  const body = JSON.stringify(faultBody(status, message));
  // Answer, then keep reading what the client still sends and close only once it has gone
  // quiet: closing while its body is still arriving resets the connection, and a reset can
  // drop the answer before the client reads it.
  socket.on('error', () => {});
  socket.write(
    `HTTP/1.1 ${status} ${REASONS[status] ?? 'Bad Request'}\r\ncontent-type: application/json\r\n` +
      `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
  );
  let idle: NodeJS.Timeout | undefined;
  const quiet = () => {
    clearTimeout(idle);
    idle = setTimeout(() => socket.end(), 50);
  };
  socket.on('data', quiet);
  socket.resume();
  quiet();
  setTimeout(() => socket.destroy(), 5_000).unref();
}

/** Bytes outside visible ASCII, as the request line carried them (Node reads it as latin1). */
const escapeBytes = (s: string) =>
  s.replace(/[^\x21-\x7e]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`);

/**
 * The path to forward, or the reason to refuse: every segment decoded once and re-encoded, so
 * that `\`, `#`, `%` and friends can never be read as structure downstream.
 */
export function canonicalTarget(url: string): { path: string } | { refuse: string } {
  if (!url.startsWith('/')) return { refuse: 'The request target must be a path.' };
  const escaped = escapeBytes(url);
  const q = escaped.indexOf('?');
  const rawPath = q < 0 ? escaped : escaped.slice(0, q);
  const query = q < 0 ? '' : escaped.slice(q).replaceAll('#', '%23');
  const why = unroutablePath(rawPath);
  if (why) return { refuse: why };
  const path = rawPath
    .split('/')
    .map((s) => encodeURIComponent(decodeSegment(s) ?? ''))
    .join('/');
  return { path: path + query };
}

/** Whether a header value is visible ASCII (and spaces/tabs) only: anything else is malformed. */
const wellFormedHeader = (value: string) => /^[\t\x20-\x7e]*$/.test(value);

/** hapi's own error body (`{statusCode, error, message}`), which clients of Trove cannot read. */
function hapiError(status: number, text: string): string | undefined {
  try {
    const body = JSON.parse(text) as Record<string, unknown>;
    if (typeof body === 'object' && body && 'statusCode' in body && 'error' in body) {
      return typeof body.message === 'string' && body.message ? body.message : String(body.error);
    }
  } catch {
    // not JSON: not Trove's shape either
    return status >= 400 ? text.slice(0, 200) || (REASONS[status] ?? 'Error') : undefined;
  }
  return undefined;
}

/**
 * serverless-offline answers a function that failed or timed out with 200 and the Lambda error
 * (message, type, stack trace with local paths). API Gateway answers 502, or 504 when the
 * function timed out, and never shows the error: so does this front door.
 */
function lambdaFailure(status: number, text: string): number | undefined {
  if (status !== 200 || !text.startsWith('{"errorMessage"')) return undefined;
  try {
    const body = JSON.parse(text) as Record<string, unknown>;
    if (typeof body.errorType !== 'string' || !('errorMessage' in body)) return undefined;
    return body.errorType === 'LambdaTimeoutError' ? 504 : 502;
  } catch {
    return undefined;
  }
}

export interface Front {
  url: string;
  close(): Promise<void>;
}

export async function startFront(opts: { host: string; port: number; upstream: URL }): Promise<Front> {
  // A fresh connection per request: hapi closes idle keep-alive sockets, and a request sent on
  // one it just closed would fail for no fault of the client's.
  const agent = new Agent({ keepAlive: false });
  const server: Server = createServer({ requireHostHeader: false }, (req, res) => serve(req, res));

  function serve(req: IncomingMessage, res: ServerResponse) {
    const method = req.method ?? '';
    if (!METHODS.has(method)) return fault(res, 405, `The method ${method} is not allowed.`);
    const target = canonicalTarget(req.url ?? '');
    if ('refuse' in target) return fault(res, 400, target.refuse);
    for (const name of ['content-type', 'accept', 'x-auth-token']) {
      const value = req.headers[name];
      if (typeof value === 'string' && !wellFormedHeader(value)) {
        return fault(res, 400, `The ${name} header is malformed.`);
      }
    }
    // Trove's API refuses bodies over oslo.middleware's sizelimit (114,688 bytes) with 413; so
    // does this front door, before hapi, which would cut the connection on a body over its own
    // limit and lose the answer.
    if (Number(req.headers['content-length'] ?? 0) > TROVE_MAX_BODY) {
      return fault(res, 413, 'Request is too large.');
    }
    // Hop-by-hop headers are this connection's, not the upstream one's.
    const headers = { ...req.headers };
    for (const hop of HOP_BY_HOP) delete headers[hop];
    const bodiless = method === 'GET' || method === 'HEAD';
    if (bodiless) delete headers['content-length'];
    // The answer is read as text below: a compressed one (hapi gzips bodies over 1 KB) would be
    // garbled, and its client would see the connection cut.
    delete headers['accept-encoding'];
    const upstream = forward(
      {
        host: opts.upstream.hostname,
        port: opts.upstream.port,
        method,
        path: target.path,
        headers,
        agent,
      },
      (answer) => {
        const status = answer.statusCode ?? 502;
        const chunks: Buffer[] = [];
        answer.on('data', (c: Buffer) => chunks.push(c));
        answer.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          const failed = lambdaFailure(status, text);
          if (failed === 504) return fault(res, 504, 'The request timed out.');
          if (failed) return fault(res, 502, 'The API failed to answer.');
          const type = String(answer.headers['content-type'] ?? '');
          const foreign = status >= 400 && (!type.includes('json') || !text) ? text : undefined;
          const message =
            status >= 400 && method !== 'HEAD' ? (foreign ?? hapiError(status, text)) : undefined;
          if (message !== undefined) return fault(res, status, message.trim() || 'Error');
          const back = { ...answer.headers };
          for (const hop of HOP_BY_HOP) delete back[hop];
          back['content-length'] = String(Buffer.byteLength(text));
          res.writeHead(status, back);
          res.end(method === 'HEAD' ? undefined : text);
        });
        answer.on('error', () => res.destroy());
      },
    );
    let stalled = false;
    upstream.on('error', () => {
      if (stalled) return;
      if (!res.headersSent) fault(res, 503, 'The API is not available.');
      else res.destroy();
    });
    // A GET or HEAD carries no meaning in a body: hapi would not read it, and a large one left
    // unread breaks the connection to it.
    if (bodiless) {
      req.resume();
      upstream.end();
      return;
    }
    // A body that stops arriving (a chunked one without its last chunk) would hold hapi, and
    // the client, until a socket timeout: it is refused after a moment, as a refused request's
    // stalled body is answered (the fuzz found DELETEs with such a body left unanswered).
    const stall = setTimeout(() => {
      if (req.complete || res.headersSent) return;
      stalled = true;
      upstream.destroy();
      fault(res, 400, 'The request body did not arrive in time.', true);
    }, STALLED_BODY_MS);
    stall.unref();
    req.once('end', () => clearTimeout(stall));
    req.pipe(upstream);
  }

  // What Node's HTTP parser refuses (a method it does not know, a control character in a
  // header, a malformed request line) still gets Trove's body.
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    if (err.code === 'ECONNRESET' || !socket.writable) return socket.destroy();
    if (err.code === 'HPE_INVALID_METHOD') return rawFault(socket, 405, 'The method is not allowed.');
    if (err.code === 'HPE_HEADER_OVERFLOW')
      return rawFault(socket, 400, 'The request headers are too large.');
    if (err.code?.includes('HEADER')) return rawFault(socket, 400, 'A request header is malformed.');
    if (err.code?.includes('URL')) return rawFault(socket, 400, 'The request target is malformed.');
    rawFault(socket, 400, 'The request is malformed.');
  });
  server.on('connect', (_req, socket: Duplex) => rawFault(socket, 405, 'The method CONNECT is not allowed.'));
  server.on('upgrade', (_req, socket: Duplex) =>
    rawFault(socket, 400, 'Protocol upgrades are not supported.'),
  );

  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(opts.port, opts.host, () => ok());
  });
  return {
    url: `http://${opts.host}:${opts.port}`,
    close: () =>
      new Promise<void>((ok) => {
        agent.destroy();
        server.close(() => ok());
        server.closeAllConnections();
      }),
  };
}

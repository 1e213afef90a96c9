import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join, resolve } from 'node:path';
import { DynamoDBClient, ListTablesCommand, ScanCommand } from '@aws-sdk/client-dynamodb';
import { parse } from 'yaml';
import { localCredentials } from '../../local/dynamodb.ts';

// What the fuzz and dot-segment tests share: a raw HTTP/1.1 client (fetch and node:http both
// normalise or refuse the paths, methods and headers these tests must send as they are), the
// API's routes as serverless.yml declares them, and a fingerprint of everything stored.

export interface RawRequest {
  method: string;
  /** Sent byte for byte (a latin1 string: each character is one byte). */
  target: string;
  /** Header lines, byte for byte; Host, Connection and Content-Length are added. */
  headers?: Array<[string, string]>;
  body?: Buffer;
}

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

function dechunk(data: Buffer): Buffer {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const eol = data.indexOf('\r\n', at);
    if (eol < 0) break;
    const size = Number.parseInt(data.subarray(at, eol).toString('latin1'), 16);
    if (!size) break;
    parts.push(data.subarray(eol + 2, eol + 2 + size));
    at = eol + 2 + size + 2;
  }
  return Buffer.concat(parts);
}

export function rawRequest(base: string, req: RawRequest, timeoutMs = 10_000): Promise<RawResponse> {
  const url = new URL(base);
  const body = req.body ?? Buffer.alloc(0);
  const lines = [
    `${req.method} ${req.target} HTTP/1.1`,
    `Host: ${url.host}`,
    'Connection: close',
    ...(req.headers ?? []).map(([k, v]) => `${k}: ${v}`),
    ...(body.length || ['POST', 'PUT', 'PATCH'].includes(req.method)
      ? [`Content-Length: ${body.length}`]
      : []),
  ];
  const head = Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1');
  return new Promise((ok, fail) => {
    const chunks: Buffer[] = [];
    const socket = connect(Number(url.port), url.hostname);
    const timer = setTimeout(() => {
      socket.destroy();
      fail(new Error(`no answer in ${timeoutMs} ms to ${req.method} ${req.target.slice(0, 200)}`));
    }, timeoutMs);
    // No half-close: like a browser or curl, wait for the server to close (Connection: close).
    socket.on('connect', () => socket.write(Buffer.concat([head, body])));
    socket.on('data', (c: Buffer) => chunks.push(c));
    // The server may answer (and close) before it has read a body it refuses.
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPIPE' && err.code !== 'ECONNRESET') {
        clearTimeout(timer);
        fail(err);
      }
    });
    socket.on('close', () => {
      clearTimeout(timer);
      let data = Buffer.concat(chunks);
      // Interim answers (100 Continue) come before the real one.
      while (/^HTTP\/1\.1 1\d\d /.test(data.subarray(0, 13).toString('latin1'))) {
        data = data.subarray(data.indexOf('\r\n\r\n') + 4);
      }
      const split = data.indexOf('\r\n\r\n');
      if (split < 0) return fail(new Error(`no HTTP answer to ${req.method} ${req.target.slice(0, 200)}`));
      const [statusLine = '', ...headerLines] = data.subarray(0, split).toString('latin1').split('\r\n');
      const headers: Record<string, string> = {};
      for (const line of headerLines) {
        const i = line.indexOf(':');
        headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
      }
      let rest: Buffer = data.subarray(split + 4);
      if (headers['transfer-encoding']?.includes('chunked')) rest = dechunk(rest);
      ok({ status: Number(statusLine.split(' ')[1]), headers, body: rest.toString('utf8') });
    });
  });
}

export interface Route {
  method: string;
  path: string;
  /** The first path segment after the project (or the public path's first): instances, backups ... */
  family: string;
}

/** Every HTTP route in serverless/functions/*.yml (the catch-all aside). */
export function apiRoutes(): Route[] {
  const dir = resolve(import.meta.dirname, '../../serverless/functions');
  const routes: Route[] = [];
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.yml'))) {
    const doc = parse(readFileSync(join(dir, file), 'utf8')) as Record<
      string,
      { events?: Array<{ httpApi?: unknown }> }
    >;
    for (const fn of Object.values(doc ?? {})) {
      for (const event of fn?.events ?? []) {
        const h = event.httpApi as { method?: string; path?: string } | string | undefined;
        if (!h || typeof h === 'string' || !h.method || !h.path) continue;
        const parts = h.path.split('/').filter(Boolean);
        const family =
          parts[0] === 'v1.0'
            ? familyOf(parts.slice(2).join('/'))
            : parts[0] === 'v3'
              ? 'identity'
              : parts[0] === 'v1'
                ? 'object-store'
                : 'versions';
        // A route of any method (the Swift facade) is driven with the method its clients send.
        routes.push({ method: h.method === '*' ? 'GET' : h.method, path: h.path, family });
      }
    }
  }
  return routes;
}

function familyOf(rest: string): string {
  const parts = rest.split('/');
  if (parts[0] === 'instances' && parts.length > 2) return `instances/${parts[2]}`;
  if (parts[0] === 'mgmt') return `mgmt/${parts[1]}`;
  if (parts[0] === 'datastores' && rest.includes('parameters')) return 'parameters';
  if (parts[0] === 'datastores' && rest.includes('flavors')) return 'datastores/flavors';
  if (parts[0] === 'datastores' && rest.includes('versions')) return 'datastores/versions';
  return parts[0] || '/';
}

// Attributes a heartbeat or a status sync rewrites by design, whatever the API is asked.
const VOLATILE = /updated|heartbeat|seen|_bytes|expires|last_/;

/**
 * A fingerprint of every stored item, except the tables of in-flight messages (guest answers,
 * the conductor's de-duplication) and attributes that heartbeats rewrite.
 */
export function storeFingerprint(endpoint: string) {
  const ddb = new DynamoDBClient({ endpoint, region: 'us-east-1', credentials: localCredentials });
  let tables: string[] | undefined;
  return async (): Promise<{ hash: string; items: Map<string, string> }> => {
    tables ??= ((await ddb.send(new ListTablesCommand({}))).TableNames ?? []).filter(
      // Counting a request against the rate limits is not a write the request made.
      (t) => !/operations|idempotency|rate-limits/.test(t),
    );
    const items = new Map<string, string>();
    await Promise.all(
      tables.map(async (table) => {
        let start: Record<string, unknown> | undefined;
        do {
          const out = await ddb.send(
            new ScanCommand({ TableName: table, ExclusiveStartKey: start as never, ConsistentRead: true }),
          );
          for (const item of out.Items ?? []) {
            const kept = Object.entries(item)
              .filter(([k]) => !VOLATILE.test(k))
              .sort(([a], [b]) => (a < b ? -1 : 1));
            const text = JSON.stringify(kept);
            items.set(`${table}:${createHash('sha1').update(text).digest('hex')}`, text.slice(0, 300));
          }
          start = out.LastEvaluatedKey;
        } while (start);
      }),
    );
    const hash = createHash('sha1')
      .update([...items.keys()].sort().join('\n'))
      .digest('hex');
    return { hash, items };
  };
}

/** What changed between two fingerprints, for a failure message. */
export function storeDiff(a: Map<string, string>, b: Map<string, string>): string[] {
  const gone = [...a.keys()].filter((k) => !b.has(k)).map((k) => `- ${a.get(k)}`);
  const added = [...b.keys()].filter((k) => !a.has(k)).map((k) => `+ ${b.get(k)}`);
  return [...gone, ...added];
}

/**
 * Trove's fault body: one key, the fault name of the status, holding {code == status, message}.
 * The identity routes (`/v3`) answer as Keystone does: `{"error": {code, message, title}}`.
 */
/**
 * The workflowv2 endpoint (lib/mistral/) answers in Mistral's shape; the edge before it (a dot
 * segment, an unknown method) in Trove's.
 */
export function mistralFaultProblem(status: number, body: string, faultName: (s: number) => string) {
  try {
    const json = JSON.parse(body) as Record<string, unknown>;
    if (typeof json?.faultstring === 'string' && json.faultcode === (status < 500 ? 'Client' : 'Server')) {
      return undefined;
    }
  } catch {
    return `not JSON: ${body.slice(0, 200)}`;
  }
  return troveFaultProblem(status, body, faultName);
}

export function troveFaultProblem(
  status: number,
  body: string,
  faultName: (s: number) => string,
  keystone = false,
) {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    return `not JSON: ${body.slice(0, 200)}`;
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return `not an object: ${body}`;
  const keys = Object.keys(json);
  const expected = keystone && keys[0] === 'error' ? 'error' : faultName(status);
  if (keys.length !== 1 || keys[0] !== expected) return `keys ${keys.join(',')}: ${body.slice(0, 200)}`;
  const fault = (json as Record<string, unknown>)[keys[0] ?? ''] as Record<string, unknown>;
  if (fault?.code !== status || typeof fault.message !== 'string') return `fault ${body.slice(0, 200)}`;
  return undefined;
}

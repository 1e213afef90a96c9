// Counting proxies for the cost bench: each stands in front of one local service (DynamoDB Local,
// the SQS server, s3rver) and counts the requests that reach it the way AWS bills them, by
// operation: SQS by action and queue, DynamoDB by operation with the capacity units DynamoDB
// Local reports (the proxy asks for them: ReturnConsumedCapacity TOTAL), S3 by request tier
// with the bytes uploaded. Whoever sends a request (a handler, a guest, the event source) goes
// through the same proxy, so nothing is counted twice and nothing is left out.
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Counts {
  /** "service op [detail]" → number of requests. */
  requests: Map<string, number>;
  /** DynamoDB read and write request units, as DynamoDB Local reported them. */
  readUnits: number;
  writeUnits: number;
  /** Conditional writes DynamoDB refused: billed as a write all the same (counted as 1 unit each). */
  refusedWrites: number;
  /** Bytes uploaded to S3 (object and part bodies). */
  s3BytesIn: number;
}

export const emptyCounts = (): Counts => ({
  requests: new Map(),
  readUnits: 0,
  writeUnits: 0,
  refusedWrites: 0,
  s3BytesIn: 0,
});

export function cloneCounts(c: Counts): Counts {
  return { ...c, requests: new Map(c.requests) };
}

/** b - a, for figures taken at two moments. */
export function diffCounts(b: Counts, a: Counts): Counts {
  const requests = new Map<string, number>();
  for (const [k, v] of b.requests) {
    const d = v - (a.requests.get(k) ?? 0);
    if (d) requests.set(k, d);
  }
  return {
    requests,
    readUnits: b.readUnits - a.readUnits,
    writeUnits: b.writeUnits - a.writeUnits,
    refusedWrites: b.refusedWrites - a.refusedWrites,
    s3BytesIn: b.s3BytesIn - a.s3BytesIn,
  };
}

/** Sum of the requests whose key starts with `prefix` (and satisfies `when`). */
export function total(c: Counts, prefix: string, when: (key: string) => boolean = () => true): number {
  let n = 0;
  for (const [k, v] of c.requests) if (k.startsWith(prefix) && when(k)) n += v;
  return n;
}

type Kind = 'dynamodb' | 'sqs' | 's3';

const DYNAMO_WRITES = new Set([
  'PutItem',
  'UpdateItem',
  'DeleteItem',
  'BatchWriteItem',
  'TransactWriteItems',
]);
const DYNAMO_CAPACITY = new Set([
  ...DYNAMO_WRITES,
  'GetItem',
  'Query',
  'Scan',
  'BatchGetItem',
  'TransactGetItems',
]);

/** The local guest queues are named troveless-<stage>-guest-<instance id>. */
function queueKind(url: unknown): string {
  const name =
    String(url ?? '')
      .split('/')
      .pop() ?? '';
  if (name.includes('-guest-')) return 'guest-queue';
  if (name.endsWith('-conductor')) return 'conductor-queue';
  if (name.endsWith('-dlq')) return 'dead-letter-queue';
  return name || 'no-queue';
}

/** S3 operation from the method and query: the tier AWS bills it in follows from it. */
function s3Op(method: string, url: URL): string {
  const q = url.searchParams;
  const objectPath = url.pathname.split('/').filter(Boolean).length > 1;
  if (method === 'PUT') return q.has('partNumber') ? 'UploadPart' : 'PutObject';
  if (method === 'POST') {
    if (q.has('uploads')) return 'CreateMultipartUpload';
    if (q.has('uploadId')) return 'CompleteMultipartUpload';
    if (q.has('delete')) return 'DeleteObjects';
    return 'PostObject';
  }
  if (method === 'DELETE') return q.has('uploadId') ? 'AbortMultipartUpload' : 'DeleteObject';
  if (method === 'HEAD') return objectPath ? 'HeadObject' : 'HeadBucket';
  if (method === 'GET') {
    if (!objectPath) return q.has('uploads') ? 'ListMultipartUploads' : 'ListObjects';
    return q.has('uploadId') ? 'ListParts' : 'GetObject';
  }
  return method;
}

export interface Meter {
  endpoint: string;
  counts: Counts;
  close(): Promise<void>;
}

/** A proxy on a free port in front of `target` that counts what goes through. */
export async function startMeter(kind: Kind, target: string, counts: Counts = emptyCounts()): Promise<Meter> {
  const upstream = new URL(target);
  const bump = (key: string) => counts.requests.set(key, (counts.requests.get(key) ?? 0) + 1);

  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let body = Buffer.concat(chunks);
      const url = new URL(req.url ?? '/', 'http://meter');
      let dynamoOp: string | undefined;
      if (kind === 'dynamodb') {
        dynamoOp =
          String(req.headers['x-amz-target'] ?? '')
            .split('.')
            .pop() ?? '';
        bump(`dynamodb ${dynamoOp}`);
        if (DYNAMO_CAPACITY.has(dynamoOp)) {
          // Asking for the capacity adds a field to the answer that the SDK ignores when it did not ask.
          const json = JSON.parse(body.toString('utf8') || '{}') as Record<string, unknown>;
          json.ReturnConsumedCapacity ??= 'TOTAL';
          body = Buffer.from(JSON.stringify(json));
        }
      } else if (kind === 'sqs') {
        const target = String(req.headers['x-amz-target'] ?? '');
        const action = target ? target.split('.').pop() : url.searchParams.get('Action');
        let queueUrl: unknown;
        try {
          queueUrl = (JSON.parse(body.toString('utf8') || '{}') as { QueueUrl?: string }).QueueUrl;
        } catch {
          queueUrl = new URLSearchParams(body.toString('utf8')).get('QueueUrl');
        }
        bump(`sqs ${action} ${queueKind(queueUrl)}`);
      } else {
        const op = s3Op(req.method ?? 'GET', url);
        bump(`s3 ${op}`);
        if (op === 'UploadPart' || op === 'PutObject') counts.s3BytesIn += body.length;
      }
      // The body goes on whole, with its length: no chunked framing, no 100-continue handshake.
      const { 'transfer-encoding': _te, expect: _expect, ...rest } = req.headers;
      const headers = { ...rest, host: upstream.host, 'content-length': String(body.length) };
      const out = request(
        { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers },
        (answer) => {
          const back: Buffer[] = [];
          answer.on('data', (c: Buffer) => back.push(c));
          answer.on('end', () => {
            const payload = Buffer.concat(back);
            if (dynamoOp) account(dynamoOp, answer.statusCode ?? 0, payload);
            const { 'transfer-encoding': _chunked, ...answerHeaders } = answer.headers;
            res.writeHead(answer.statusCode ?? 502, {
              ...answerHeaders,
              // A HEAD answer's length is the object's, not its (empty) body's.
              ...(req.method === 'HEAD' ? {} : { 'content-length': String(payload.length) }),
            });
            res.end(payload);
          });
        },
      );
      out.on('error', (err) => {
        res.writeHead(502);
        res.end(String(err));
      });
      out.end(body);
    });
  });

  function account(op: string, status: number, payload: Buffer): void {
    if (status >= 400) {
      if (DYNAMO_WRITES.has(op) && payload.includes('ConditionalCheckFailed')) counts.refusedWrites++;
      return;
    }
    try {
      const json = JSON.parse(payload.toString('utf8')) as {
        ConsumedCapacity?: { CapacityUnits?: number } | { CapacityUnits?: number }[];
      };
      const used = [json.ConsumedCapacity ?? []].flat().reduce((sum, c) => sum + (c.CapacityUnits ?? 0), 0);
      if (DYNAMO_WRITES.has(op)) counts.writeUnits += used;
      else counts.readUnits += used;
    } catch {
      // not JSON: nothing to account
    }
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    counts,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

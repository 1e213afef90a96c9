import { createHmac, timingSafeEqual } from 'node:crypto';

// The signed envelope every message between the control plane and a guest travels in, and the
// order a guest takes out of it, checked by hand rather than with zod: the guest agent imports
// this and nothing heavier before its first order (zod's schemas cost a guest ~0.1 s of CPU at
// start, on the path of every create). protocol.ts re-exports all of it beside the reports'
// schemas, which only the conductor reads.

/** What travels as the SQS message body: the signed JSON text and its signature. */
export interface SignedEnvelope {
  instance_id: string;
  body: string;
  signature: string;
}

/** Control plane → guest, on the instance's own queue (guest-<instance id>). */
export interface GuestRequest {
  /** Operation id: the guest runs each id at most once (SQS delivers at least once). */
  id: string;
  instance_id: string;
  method: string;
  args: Record<string, unknown>;
  /** Unix time in seconds (float), as Trove's `sent`. */
  sent: number;
  /** When set, the guest reports the outcome as an `operation_result` carrying this back. */
  reply_token?: string;
}

export function sign(key: Buffer, body: string): string {
  return createHmac('sha256', key).update(body).digest('base64url');
}

export function seal(key: Buffer, instanceId: string, message: object): string {
  const body = JSON.stringify(message);
  return JSON.stringify({
    instance_id: instanceId,
    body,
    signature: sign(key, body),
  } satisfies SignedEnvelope);
}

export function verifySignature(key: Buffer, envelope: SignedEnvelope): boolean {
  const expected = Buffer.from(sign(key, envelope.body));
  const actual = Buffer.from(envelope.signature);
  return expected.length === actual.length && timingSafeEqual(expected, actual);
}

/** Parses a queue body into its envelope; undefined when it is not one. */
export function openEnvelope(text: string): SignedEnvelope | undefined {
  const value = parseJson(text);
  if (!isRecord(value)) return undefined;
  const { instance_id, body, signature } = value;
  if (!isText(instance_id, 1) || !isText(body, 2) || !isText(signature, 1)) return undefined;
  return { instance_id, body, signature };
}

/** An envelope's body as an order; undefined when it is not one (the guest drops it). */
export function parseGuestRequest(body: string): GuestRequest | undefined {
  const value = parseJson(body);
  if (!isRecord(value)) return undefined;
  const { id, instance_id, method, args = {}, sent, reply_token } = value;
  if (!isText(id, 1) || !isText(instance_id, 1) || !isText(method, 1)) return undefined;
  if (!isRecord(args) || typeof sent !== 'number' || !Number.isFinite(sent)) return undefined;
  if (reply_token !== undefined && typeof reply_token !== 'string') return undefined;
  return { id, instance_id, method, args, sent, ...(reply_token !== undefined ? { reply_token } : {}) };
}

export const nowSeconds = () => Date.now() / 1000;

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** A JSON object (what zod's object and record accept): not null, not an array. */
function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isText(value: unknown, minLength: number): value is string {
  return typeof value === 'string' && value.length >= minLength;
}

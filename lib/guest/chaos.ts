/**
 * How many times each guest and conductor message is sent. Normally once; the local test cloud
 * sets TROVELESS_CHAOS_DUPLICATE_MESSAGES=true so that every message of every workflow arrives
 * twice, as SQS's at-least-once delivery allows, and the whole e2e suite checks idempotency.
 */
export function deliveries(): number {
  return process.env.TROVELESS_CHAOS_DUPLICATE_MESSAGES === 'true' ? 2 : 1;
}

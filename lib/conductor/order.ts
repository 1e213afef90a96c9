import { openEnvelope } from '../guest/signing.ts';

// SQS hands the conductor a batch of up to ten reports, and Powertools' batch processor runs a
// batch's records side by side. Two reports of one guest in one batch (a "crashed" and then a
// "healthy" heartbeat, sent while the conductor was down; a prepare's heartbeat and its answer,
// sent together) would then race in every step that follows their writes. Each guest's reports
// in a batch are taken one after another, in the batch's order; different guests' still run side
// by side. The processor starts its records in the batch's order (it calls each handler without
// an await before it), so each record joins its guest's chain in that order.

export type InGuestOrder = <T>(body: string, handle: (body: string) => Promise<T>) => Promise<T>;

/**
 * One batch's ordering: `handle` runs for `body` once every report of the same guest handed in
 * before it has been handled (whether that failed or not); a body that names no guest runs at once.
 * One per invocation, so that nothing of one batch (a report that never ends) holds up another.
 * The key is the envelope's instance id before its signature is checked: a forged report can
 * only queue behind a guest's own reports, and is dropped when its turn comes.
 */
export function guestOrder(): InGuestOrder & { inFlight(): number } {
  /** The tail of each guest's chain of reports being handled, by instance id. */
  const chains = new Map<string, Promise<unknown>>();
  const inOrder = async <T>(body: string, handle: (body: string) => Promise<T>): Promise<T> => {
    const guest = openEnvelope(body)?.instance_id;
    if (!guest) return handle(body);
    const mine = (chains.get(guest) ?? Promise.resolve()).catch(() => {}).then(() => handle(body));
    chains.set(guest, mine);
    try {
      return await mine;
    } finally {
      // The last of the chain clears it; a later report has already put itself after this one.
      if (chains.get(guest) === mine) chains.delete(guest);
    }
  };
  return Object.assign(inOrder, { inFlight: () => chains.size });
}

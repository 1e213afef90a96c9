import { openEnvelope } from '../guest/signing.ts';

// SQS hands the conductor a batch of up to ten reports, and Powertools' batch processor runs a
// batch's records side by side. Two reports of one guest in one batch (a "crashed" and then a
// "healthy" heartbeat, sent while the conductor was down) would then race in every step that
// follows their writes. Each guest's reports are taken one after another, in the batch's order;
// different guests' still run side by side.

/** The tail of each guest's chain of reports being handled, by instance id. */
const chains = new Map<string, Promise<unknown>>();

/**
 * `handle`, run for `body` once every report of the same guest handed in before it has been
 * handled (whether that failed or not). A body that names no guest runs at once.
 */
export async function inGuestOrder<T>(body: string, handle: (body: string) => Promise<T>): Promise<T> {
  const guest = openEnvelope(body)?.instance_id;
  if (!guest) return handle(body);
  const before = chains.get(guest);
  const mine = (before ?? Promise.resolve()).catch(() => {}).then(() => handle(body));
  chains.set(guest, mine);
  try {
    return await mine;
  } finally {
    // The last of the chain clears it; a later report has already put itself after this one.
    if (chains.get(guest) === mine) chains.delete(guest);
  }
}

/** How many guests have reports being handled now (for tests: nothing is held once a batch ends). */
export const guestsInFlight = () => chains.size;

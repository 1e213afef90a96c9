import { runBackupScheduler } from '#lib/backups/scheduling';

/**
 * Scheduled (every 5 minutes): takes the backups that policies say are due and prunes what their
 * retention no longer keeps. An invocation may pass `{ "now": "<ISO time>" }` to run the same
 * logic at a chosen time (tests drive the clock this way).
 */
export const handler = async (event: { now?: string } = {}) => {
  const now = event.now ? new Date(event.now) : new Date();
  if (Number.isNaN(now.getTime())) throw new Error(`not a time: ${event.now}`);
  return runBackupScheduler(now);
};

import { syncServerStatuses } from '#lib/instances/sync';

/** Scheduled: brings every instance's server status in line with the compute layer. */
export const handler = async () => syncServerStatuses();

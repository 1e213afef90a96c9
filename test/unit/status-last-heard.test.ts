import { describe, expect, it } from 'vitest';
import { deriveStatus, lastHeard } from '../../lib/instances/status.ts';

// A heartbeat that changes nothing writes only last_seen_heartbeat (lib/conductor/heartbeats.ts):
// the API must still show the guest as heard then, and not expire it.

const settled = {
  task_status: 'NONE',
  service_status: 'healthy',
  server_status: 'ACTIVE',
  service_status_updated: '2026-12-03T10:00:00',
};
const at = (iso: string) => Date.parse(`${iso}Z`) / 1000;

describe('when a guest was last heard', () => {
  it('is the later of the status write and the last heartbeat applied', () => {
    expect(lastHeard(settled)).toBe('2026-12-03T10:00:00');
    expect(lastHeard({ ...settled, last_seen_heartbeat: at('2026-12-03T10:05:00') + 0.75 })).toBe(
      '2026-12-03T10:05:00',
    );
    // A status written after the last time-only heartbeat counts.
    expect(lastHeard({ ...settled, last_seen_heartbeat: at('2026-12-03T09:59:00') })).toBe(
      '2026-12-03T10:00:00',
    );
  });

  it('keeps a guest heard only through time-only heartbeats from expiring', () => {
    const now = new Date('2026-12-03T10:10:00Z');
    expect(deriveStatus(settled, now, 180).operating_status).toBe('ERROR');
    expect(deriveStatus(settled, now, 180).service_status).toBe('guestagent timeout');
    const heard = { ...settled, last_seen_heartbeat: at('2026-12-03T10:09:00') };
    expect(deriveStatus(heard, now, 180).operating_status).toBe('HEALTHY');
    // ... until it falls silent for the expiry.
    expect(deriveStatus(heard, new Date('2026-12-03T10:12:00Z'), 180).operating_status).toBe('ERROR');
  });
});

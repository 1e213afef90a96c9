import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { deriveStatus, refusalToAct, SERVICE_STATUSES, TASK_STATUSES } from '../../lib/instances/status.ts';

const now = new Date('2026-11-21T12:00:00Z');
const at = (secondsAgo: number) => new Date(now.getTime() - secondsAgo * 1000).toISOString().slice(0, 19);

const inputs = fc.record({
  task_status: fc.constantFrom(...Object.keys(TASK_STATUSES)),
  service_status: fc.constantFrom(...Object.keys(SERVICE_STATUSES)),
  service_status_updated: fc.integer({ min: 0, max: 1000 }).map(at),
  server_status: fc.constantFrom('BUILD', 'ACTIVE', 'SHUTDOWN', 'ERROR', 'DELETED', 'REBOOT'),
  backup_running: fc.boolean(),
});

describe('Trove status model', () => {
  it('a fresh, healthy, settled instance is ACTIVE/HEALTHY', () => {
    const s = deriveStatus(
      {
        task_status: 'NONE',
        service_status: 'healthy',
        service_status_updated: at(5),
        server_status: 'ACTIVE',
      },
      now,
      90,
    );
    expect(s).toMatchObject({ status: 'ACTIVE', operating_status: 'HEALTHY' });
  });

  it('an admin’s rebuild shows as Trove’s (task BUILDING): BUILD, no operating status, no action', () => {
    const rebuilding = {
      task_status: 'REBUILDING',
      service_status: 'healthy',
      service_status_updated: at(5),
      server_status: 'ACTIVE',
    };
    expect(deriveStatus(rebuilding, now, 90)).toMatchObject({ status: 'BUILD', operating_status: '' });
    expect(refusalToAct(rebuilding, { anyGuest: true })).toBe('task status was BUILDING');
  });

  it('a guest silent past the expiry shows operating status ERROR, and status stays ACTIVE', () => {
    const s = deriveStatus(
      {
        task_status: 'NONE',
        service_status: 'healthy',
        service_status_updated: at(91),
        server_status: 'ACTIVE',
      },
      now,
      90,
    );
    expect(s).toMatchObject({ status: 'ACTIVE', operating_status: 'ERROR' });
  });

  it('RESTART_REQUIRED is never expired', () => {
    const s = deriveStatus(
      {
        task_status: 'RESTART_REQUIRED',
        service_status: 'restart required',
        service_status_updated: at(900),
        server_status: 'ACTIVE',
      },
      now,
      90,
    );
    expect(s.status).toBe('RESTART_REQUIRED');
    expect(s.service_status).toBe('restart required');
  });

  it('operating status is empty unless the task is NONE and the server ACTIVE', () => {
    fc.assert(
      fc.property(inputs, (i) => {
        const s = deriveStatus(i, now, 90);
        const settled = i.task_status === 'NONE' && i.server_status === 'ACTIVE';
        expect(s.operating_status === '').toBe(!settled);
      }),
    );
  });

  it('an error task always shows ERROR, whatever else is true', () => {
    fc.assert(
      fc.property(
        inputs,
        fc.constantFrom('BUILDING_ERROR_SERVER', 'BUILDING_ERROR_TIMEOUT_GA'),
        (i, task) => {
          expect(deriveStatus({ ...i, task_status: task }, now, 90).status).toBe('ERROR');
        },
      ),
    );
  });

  it('BUILDING shows BUILD unless the server failed', () => {
    fc.assert(
      fc.property(inputs, (i) => {
        const s = deriveStatus({ ...i, task_status: 'BUILDING' }, now, 90);
        expect(s.status).toBe(i.server_status === 'ERROR' ? 'ERROR' : 'BUILD');
      }),
    );
  });

  it('a running backup shows BACKUP only on a settled instance', () => {
    const s = deriveStatus(
      {
        task_status: 'NONE',
        service_status: 'healthy',
        service_status_updated: at(1),
        server_status: 'ACTIVE',
        backup_running: true,
      },
      now,
      90,
    );
    expect(s.status).toBe('BACKUP');
  });

  it('refuses actions exactly when Trove would', () => {
    const ok = {
      task_status: 'NONE',
      service_status: 'healthy',
      service_status_updated: at(1),
      server_status: 'ACTIVE',
    };
    expect(refusalToAct(ok)).toBeUndefined();
    expect(refusalToAct({ ...ok, task_status: 'REBOOTING' })).toMatch(/task status/);
    expect(refusalToAct({ ...ok, server_status: 'SHUTDOWN' })).toMatch(/server status/);
    expect(refusalToAct({ ...ok, service_status: 'new' })).toMatch(/service status/);
    expect(refusalToAct({ ...ok, backup_running: true })).toMatch(/backup/);
  });
});

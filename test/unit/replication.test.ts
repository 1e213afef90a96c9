import { describe, expect, it } from 'vitest';
import { semiSyncLines } from '../../agent/engines/mariadb-replication.ts';
import { forkedTimeline, lastError, renderRoleConf } from '../../agent/engines/pg-replication.ts';
import type { InstanceItem } from '../../lib/instances/model.ts';
import { deriveStatus } from '../../lib/instances/status.ts';
import { instanceDetail, instanceSummary } from '../../lib/instances/views.ts';
import { assertModeSupported, followsNow, guestModeOf } from '../../lib/replication/mode.ts';
import { mostAdvanced, positionValue } from '../../lib/replication/positions.ts';
import { renderTable } from '../../local/compute/firewall.ts';

// The pure parts of replication: which replica an eject picks, what the views say of a set, a
// broken replication's status, and the host's firewall letting a set's members reach each other.

const now = new Date('2026-12-04T10:00:00Z');
const item = (over: Partial<InstanceItem>): InstanceItem =>
  ({
    project_id: 'p',
    id: 'i',
    name: 'n',
    created: '2026-12-04T09:00:00',
    updated: '2026-12-04T09:00:00',
    region: 'RegionOne',
    flavor_id: '7',
    flavor_ram: 512,
    volume_size: 1,
    datastore: {
      type: 'mysql',
      version: '10.11',
      version_id: 'v',
      version_number: '10.11',
      manager: 'mysql',
    },
    task_status: 'NONE',
    service_status: 'healthy',
    service_status_updated: '2026-12-04T09:59:59',
    server_status: 'ACTIVE',
    wrapped_key: 'k',
    ...over,
  }) as InstanceItem;

describe('replication, pure parts', () => {
  it('picks the replica with the most advanced position, per engine', () => {
    expect(
      mostAdvanced('mysql', [
        { id: 'a', position: '0-1-10' },
        { id: 'b', position: '0-1-12' },
        { id: 'c', position: '0-1-11' },
      ]),
    ).toBe('b');
    expect(positionValue('mysql', '0-1-5,1-2-3')).toBe(8n);
    expect(
      mostAdvanced('postgresql', [
        { id: 'a', position: '0/3000060' },
        { id: 'b', position: '1/0' },
      ]),
    ).toBe('b');
    expect(
      mostAdvanced('redis', [
        { id: 'a', position: '900' },
        { id: 'b', position: '1200' },
      ]),
    ).toBe('b');
    // A tie keeps the first, and an unreadable position never wins.
    expect(
      mostAdvanced('redis', [
        { id: 'a', position: '5' },
        { id: 'b', position: '5' },
      ]),
    ).toBe('a');
    expect(
      mostAdvanced('postgresql', [
        { id: 'a', position: '0/1' },
        { id: 'b', position: '' },
      ]),
    ).toBe('a');
    expect(() => mostAdvanced('redis', [])).toThrow(/no replica/);
  });

  it("shows Trove's replica_of and replicas, and the replication field on both sides", () => {
    const ctx = { base: 'http://h', isAdmin: false, now };
    const replica = instanceSummary(item({ id: 'r', replica_of_id: 's' }), ctx);
    expect(replica.replica_of).toEqual({
      id: 's',
      links: [
        { rel: 'self', href: 'http://h/v1.0/p/instances/s' },
        { rel: 'bookmark', href: 'http://h/instances/s' },
      ],
    });
    const source = instanceDetail(item({ id: 's', replica_ids: ['r'] }), ctx);
    expect(source.replicas?.map((r) => r.id)).toEqual(['r']);
    expect(source.replication).toEqual({ role: 'source', mode: 'async', failover: 'manual' });
    expect(instanceDetail(item({ id: 'x' }), ctx).replication).toBeUndefined();
    // A standalone instance created with a mode shows it: the set it will feed has that mode.
    expect(instanceDetail(item({ id: 'y', replication_mode: 'sync' }), ctx).replication).toEqual({
      role: 'source',
      mode: 'sync',
      failover: 'manual',
    });
    // The set's failover setting shows on every member, with its term and its events.
    expect(
      instanceDetail(item({ id: 'z', replication_failover: 'automatic', replication_term: 2 }), ctx)
        .replication,
    ).toEqual({ role: 'source', mode: 'async', failover: 'automatic', term: 2 });
    // What the guest reported shows only while it agrees with the role the control plane knows.
    const reported = instanceDetail(
      item({ id: 'r', replica_of_id: 's', replication: { role: 'replica', running: true, lag_seconds: 0 } }),
      ctx,
    );
    expect(reported.replication).toEqual({
      role: 'replica',
      running: true,
      lag_seconds: 0,
      mode: 'async',
      failover: 'manual',
    });
  });

  it('a broken replication shows operating status ERROR with the engine’s message as the fault', () => {
    const broken = item({
      replica_of_id: 's',
      replication: { role: 'replica', running: false, error: "error connecting to master 'x'" },
    });
    expect(deriveStatus(broken, now, 180)).toMatchObject({ status: 'ACTIVE', operating_status: 'ERROR' });
    const view = instanceDetail(broken, { base: 'http://h', isAdmin: false, now });
    expect(view.fault?.message).toBe("error connecting to master 'x'");
    expect(deriveStatus(item({}), now, 180).operating_status).toBe('HEALTHY');
  });

  it('shows the replica tasks as Trove does', () => {
    const status = (task_status: string) => deriveStatus(item({ task_status }), now, 180).status;
    expect(['PROMOTING', 'EJECTING', 'DETACHING'].map(status)).toEqual(['PROMOTE', 'EJECT', 'DETACH']);
    expect(['PROMOTION_ERROR', 'EJECTION_ERROR', 'BUILDING_ERROR_REPLICA'].map(status)).toEqual([
      'ERROR',
      'ERROR',
      'ERROR',
    ]);
  });

  it("lets a set's members reach each other's engine port, marked so the peer admits them", () => {
    const script = renderTable('troveless_abc', [
      { key: 'a1', address: '127.77.0.2', port: 3306, uid: 901, peers: ['b2'], allowedCidrs: ['10.0.0.0/8'] },
      { key: 'b2', address: '127.77.0.3', port: 3306, uid: 902, peers: ['a1'] },
      { key: 'c3', address: '127.77.0.4', port: 3306, uid: 903 },
    ]);
    const lines = script.split('\n').map((l) => l.trim());
    const peer = 'meta skuid 901 ct state new ip daddr 127.77.0.3 tcp dport 3306 ct mark set 0x7e91 accept';
    // Before the rule that refuses the member's user everything but its own address.
    expect(lines.indexOf(peer)).toBeGreaterThan(-1);
    expect(lines.indexOf(peer)).toBeLessThan(
      lines.indexOf('meta skuid 901 ct state new ip daddr != 127.77.0.2 reject'),
    );
    expect(script).toContain(
      'meta skuid 902 ct state new ip daddr 127.77.0.2 tcp dport 3306 ct mark set 0x7e91 accept',
    );
    // Only members admit marked connections, and no rule lets c3 reach anyone.
    expect(script.match(/ct mark 0x7e91 accept/g)).toHaveLength(2);
    expect(script).not.toMatch(/skuid 903 .*accept/);
  });

  it('sync mode: a source waits only while a replica follows it; Redis refuses it', () => {
    expect(guestModeOf(item({ replica_ids: ['r'] }), 'sync', 1)).toBe('sync');
    expect(guestModeOf(item({ replica_ids: [] }), 'sync', 0)).toBe('async');
    // After an eject that left only the dead old source: nobody to wait for.
    expect(guestModeOf(item({ replica_ids: ['dead'] }), 'sync', 0)).toBe('async');
    expect(guestModeOf(item({ replica_of_id: 's' }), 'sync', 0)).toBe('sync');
    // Following is what its guest last said, fresh: a fenced old source recorded as a replica is not.
    const now = 1_000_000;
    const replica = (over: Partial<InstanceItem>) =>
      item({
        replica_of_id: 's',
        last_seen_heartbeat: now - 5,
        replication: { role: 'replica', running: true },
        ...over,
      });
    expect(followsNow(replica({}), 's', now, 60)).toBe(true);
    expect(followsNow(replica({ replica_of_id: 'other' }), 's', now, 60)).toBe(false);
    expect(followsNow(replica({ replication: { role: 'replica', running: false } }), 's', now, 60)).toBe(
      false,
    );
    expect(followsNow(replica({ replication: undefined }), 's', now, 60)).toBe(false);
    expect(followsNow(replica({ last_seen_heartbeat: now - 61 }), 's', now, 60)).toBe(false);
    expect(() => assertModeSupported('redis', 'sync')).toThrow(/not supported for datastore redis/);
    expect(() => assertModeSupported('redis', 'async')).not.toThrow();
    expect(() => assertModeSupported('postgresql', 'sync')).not.toThrow();
  });

  it('PostgreSQL: a standby whose history forked from its source’s is named, not taken for streaming', () => {
    // What a fenced old source logged when it was started as a standby with no rewind (PostgreSQL 15).
    const log = [
      '2026-12-04 19:41:37.128 UTC [24036] LOG:  started streaming WAL from primary at 0/5000000 on timeline 1',
      '2026-12-04 19:41:37.134 UTC [24036] LOG:  replication terminated by primary server',
      '2026-12-04 19:41:37.136 UTC [24034] LOG:  new timeline 2 forked off current database system timeline 1 before current recovery point 0/51D0A08',
      '2026-12-04 19:41:37.146 UTC [24034] LOG:  waiting for WAL to become available at 0/5002000',
    ].join('\n');
    expect(forkedTimeline(log)).toBe(
      'new timeline 2 forked off current database system timeline 1 before current recovery point 0/51D0A08',
    );
    expect(lastError(log)).toMatch(/^new timeline 2 forked off/);
    expect(
      forkedTimeline('LOG:  started streaming WAL from primary at 0/5000000 on timeline 2'),
    ).toBeUndefined();
    expect(lastError('x FATAL:  could not connect to the primary server')).toBe(
      'could not connect to the primary server',
    );
  });

  it('sync mode in the engines’ config: PostgreSQL waits for any one standby, MariaDB never times out', () => {
    const conf = renderRoleConf(undefined, undefined, 'x', true);
    expect(conf).toContain("synchronous_standby_names = 'ANY 1 (*)'");
    expect(conf).toContain('synchronous_commit = on');
    expect(renderRoleConf(undefined, undefined, 'x', false)).not.toContain('synchronous_standby_names');
    expect(semiSyncLines({ source: true, replica: true })).toEqual(
      expect.arrayContaining(['rpl_semi_sync_master_enabled = ON', 'rpl_semi_sync_slave_enabled = ON']),
    );
    expect(semiSyncLines({ source: false, replica: true })).toContain('rpl_semi_sync_master_enabled = OFF');
  });
});

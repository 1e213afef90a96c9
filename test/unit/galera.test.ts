import { describe, expect, it } from 'vitest';
import {
  clusterAddress,
  GALERA_PROVIDER,
  galeraLines,
  galeraPorts,
  parseStatus,
  SST_USER,
  safeToBootstrap,
  sstAuthFile,
} from '../../agent/engines/galera.ts';
import { membershipOf } from '../../agent/galera-operations.ts';
import { galeraPeerPorts } from '../../lib/clusters/galera.ts';
import { type GaleraStatus, notSynced } from '../../lib/clusters/galera-status.ts';
import { strategyFor } from '../../lib/clusters/strategy.ts';

const membership = {
  name: 'troveless-c1',
  self: '127.77.0.3',
  members: [
    { host: '127.77.0.2', port: 3306 },
    { host: '127.77.0.3', port: 3306 },
    { host: '127.77.0.4', port: 3306 },
  ],
};

describe('a Galera member’s configuration (agent)', () => {
  it('uses the standard ports for the standard engine port, and the control plane opens the same', () => {
    expect(galeraPorts(3306)).toEqual({ group: 4567, ist: 4568, sst: 4444 });
    expect(galeraPeerPorts(3306)).toEqual([4567, 4568, 4444]);
    // Members sharing an address, each on its own engine port, get ports of their own.
    expect(galeraPeerPorts(3307)).toEqual(Object.values(galeraPorts(3307)));
  });

  it('names every member, listens and announces on its own address, and keeps the password out', () => {
    const lines = galeraLines(membership, 3306, '127.77.0.3', '/srv/i/galera-sst.cnf');
    expect(lines).toEqual(
      expect.arrayContaining([
        'wsrep_on = ON',
        `wsrep_provider = ${GALERA_PROVIDER}`,
        'wsrep_cluster_name = troveless-c1',
        'wsrep_cluster_address = gcomm://127.77.0.2:4567,127.77.0.3:4567,127.77.0.4:4567',
        'wsrep_node_address = 127.77.0.3:4567',
        'wsrep_provider_options = "gmcast.listen_addr=tcp://127.77.0.3:4567;ist.recv_addr=127.77.0.3:4568;pc.recovery=TRUE"',
        'wsrep_sst_receive_address = 127.77.0.3:4444',
        'wsrep_sst_method = mariabackup',
        'innodb_autoinc_lock_mode = 2',
        '!include /srv/i/galera-sst.cnf',
        '[sst]',
        'sockopt = ,bind=127.77.0.3',
      ]),
    );
    expect(lines.join('\n')).not.toContain('wsrep_sst_auth');
    expect(galeraLines(membership, 3306, '0.0.0.0', '/f').join('\n')).toContain(
      'listen_addr=tcp://0.0.0.0:4567',
    );
    expect(clusterAddress([{ host: 'h', port: 3307 }])).toBe('gcomm://h:4568');
  });

  it('puts the SST account in its own file', () => {
    expect(sstAuthFile('pw_1234567890abcdef')).toBe(
      `[mariadbd]\nwsrep_sst_auth = ${SST_USER}:pw_1234567890abcdef\n`,
    );
  });

  it('reads safe_to_bootstrap from grastate.dat', () => {
    const grastate = (safe: number) =>
      `# GALERA saved state\nversion: 2.1\nuuid: 6b1c\nseqno: 12\nsafe_to_bootstrap: ${safe}\n`;
    expect(safeToBootstrap(grastate(1))).toBe(true);
    expect(safeToBootstrap(grastate(0))).toBe(false);
    expect(safeToBootstrap(undefined)).toBe(false);
  });

  it('takes only a well-formed membership from a guest call', () => {
    expect(membershipOf(membership)).toEqual(membership);
    expect(() => membershipOf({ ...membership, name: 'a\nwsrep_on = OFF' })).toThrow(/name/);
    expect(() => membershipOf({ ...membership, members: [{ host: 'h', port: 0 }] })).toThrow(/member/);
    expect(() => membershipOf({ ...membership, members: [] })).toThrow(/members/);
    expect(() => membershipOf({ ...membership, name: 'x'.repeat(33) })).toThrow(/32 characters/);
  });
});

describe('the Galera cluster’s verdict (control plane)', () => {
  const synced: GaleraStatus = {
    cluster_size: 3,
    cluster_status: 'Primary',
    local_state: 'Synced',
    ready: true,
  };
  const all = (status: Partial<GaleraStatus>, which = 'm2') =>
    ['m1', 'm2', 'm3'].map((id) => ({ id, status: id === which ? { ...synced, ...status } : synced }));

  it('is formed only when every member is Synced in one primary component of all of them', () => {
    expect(notSynced(all({}), 3)).toBeUndefined();
    expect(notSynced(all({ local_state: 'Joiner' }), 3)).toBe('member m2 is Joiner');
    expect(notSynced(all({ cluster_size: 2 }), 3)).toBe('member m2 sees 2 of 3 members');
    expect(notSynced(all({ cluster_status: 'non-Primary' }), 3)).toBe(
      'member m2 is in a non-Primary component',
    );
    expect(notSynced(all({ ready: false }), 3)).toBe('member m2 does not take queries yet');
    expect(notSynced(all({}), 4)).toBe('member m1 sees 3 of 4 members');
  });

  it('reads the wsrep status rows of a member', () => {
    const rows = [
      { Variable_name: 'wsrep_cluster_size', Value: '3' },
      { Variable_name: 'wsrep_cluster_status', Value: 'Primary' },
      { Variable_name: 'wsrep_local_state_comment', Value: 'Synced' },
      { Variable_name: 'wsrep_ready', Value: 'ON' },
    ];
    expect(parseStatus(rows)).toEqual(synced);
    expect(parseStatus([])).toEqual({
      cluster_size: 0,
      cluster_status: 'Disconnected',
      local_state: 'Disconnected',
      ready: false,
    });
  });

  it('clusters mysql and mariadb with Galera, from 3 members, able to grow and shrink', () => {
    for (const manager of ['mysql', 'mariadb']) {
      const strategy = strategyFor(manager);
      expect(strategy?.minMembers).toBe(3);
      expect(strategy?.addMembers).toBeTypeOf('function');
      expect(strategy?.removeMembers).toBeTypeOf('function');
    }
    expect(strategyFor('postgresql')).toBeUndefined();
  });
});

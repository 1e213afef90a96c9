import { describe, expect, it } from 'vitest';
import { TarMemberCapture } from '../../agent/backup/tar-member.ts';
import { incrementalRefusal, parentRefusal } from '../../lib/backups/incremental.ts';
import type { BackupItem } from '../../lib/backups/model.ts';
import { seedVersions } from '../../lib/catalog/seed-data.ts';

// Which datastore versions take incremental backups (the others answer Trove's NotImplemented,
// 501), which backups an incremental may build on, and how the agent picks a PostgreSQL backup's
// manifest out of the tar stream it uploads.

const on = (datastore: string, version: string) => {
  const v = seedVersions.find((s) => s.datastore_name === datastore && s.name === version);
  if (!v) throw new Error(`no seeded ${datastore} ${version}`);
  return { type: v.datastore_name, version: v.name, manager: v.manager };
};

const backup = (version: string, fields: Partial<BackupItem> = {}): BackupItem => ({
  project_id: 'p',
  id: `b-${version}`,
  name: 'b',
  instance_id: 'i',
  backup_type: 'full',
  status: 'COMPLETED',
  created: '2026-01-01T00:00:00',
  updated: '2026-01-01T00:00:00',
  datastore: { type: 'postgresql', version, version_id: `v-${version}`, manager: 'postgresql' },
  bucket: 'backups',
  key: `p/i/b-${version}.zst.enc`,
  wrapped_data_key: 'k',
  ...fields,
});

describe('incremental backups per datastore version', () => {
  it('MariaDB always, PostgreSQL from 17, Redis never: the others answer 501', () => {
    expect(incrementalRefusal(on('mysql', '10.11'))).toBeUndefined();
    expect(incrementalRefusal(on('mariadb', '10.11'))).toBeUndefined();
    expect(incrementalRefusal(on('postgresql', '15'))).toBe(
      'Incremental backups are not supported for datastore postgresql version 15.',
    );
    expect(incrementalRefusal(on('postgresql', '16'))).toBe(
      'Incremental backups are not supported for datastore postgresql version 16.',
    );
    expect(incrementalRefusal(on('postgresql', '17'))).toBeUndefined();
    expect(incrementalRefusal(on('redis', '7.0'))).toBe(
      'Incremental backups are not supported for datastore redis.',
    );
    // A version this cloud cannot run takes none.
    expect(incrementalRefusal({ type: 'postgresql', version: 'custom', manager: 'postgresql' })).toMatch(
      /not supported for datastore postgresql version custom/,
    );
  });

  it('a PostgreSQL incremental builds only on a backup of the same version that kept its manifest', () => {
    const pg17 = on('postgresql', '17');
    expect(parentRefusal(pg17, backup('17', { manifest: true }))).toBeUndefined();
    // Taken before the upgrade to 17 (the upgrade's own backup, say).
    expect(parentRefusal(pg17, backup('15'))).toMatch(/taken on postgresql 15; an incremental on 17/);
    // Taken on 17 before manifests were kept.
    expect(parentRefusal(pg17, backup('17'))).toMatch(/has no backup manifest/);
    expect(parentRefusal(on('mariadb', '10.11'), backup('10.11'))).toBeUndefined();
  });
});

/** A ustar header as pg_basebackup writes one (octal fields; base-256 sizes when asked). */
function header(name: string, size: number, { type = '0', base256 = false } = {}): Buffer {
  const h = Buffer.alloc(512);
  h.write(name, 0, 'utf8');
  h.write('0000600\0', 100, 'latin1');
  if (base256) {
    h[124] = 0x80;
    h.writeBigUInt64BE(BigInt(size), 128);
  } else {
    h.write(`${size.toString(8).padStart(11, '0')}\0`, 124, 'latin1');
  }
  h.write(type, 156, 'latin1');
  h.write('ustar\0', 257, 'latin1');
  h.write('00', 263, 'latin1');
  return h;
}

const member = (name: string, body: Buffer, opts?: { type?: string; base256?: boolean }) =>
  Buffer.concat([header(name, body.length, opts), body, Buffer.alloc((512 - (body.length % 512)) % 512)]);

describe('the manifest picked out of a backup tar', () => {
  const manifest = Buffer.from('{"PostgreSQL-Backup-Manifest-Version": 2}\n');
  // The file's name inside another member's data must not fool it.
  const tar = Buffer.concat([
    member('base', Buffer.alloc(0), { type: '5' }),
    member('base/1/1259', Buffer.concat([header('backup_manifest', 9), Buffer.alloc(700, 7)])),
    member('global/pg_control', Buffer.alloc(8192, 1), { base256: true }),
    member('backup_manifest', manifest),
    Buffer.alloc(1024),
  ]);

  it('finds it however the stream is cut', () => {
    for (const size of [1, 7, 511, 512, 513, 4096, tar.length]) {
      const capture = new TarMemberCapture('backup_manifest', 1024);
      for (let at = 0; at < tar.length; at += size) capture.write(tar.subarray(at, at + size));
      expect(capture.content().equals(manifest)).toBe(true);
    }
  });

  it('says so when it is missing, too large, or the stream is no tar', () => {
    const missing = new TarMemberCapture('backup_manifest', 1024);
    missing.write(tar.subarray(0, tar.length - 1024 - 1024));
    expect(() => missing.content()).toThrow(/holds no backup_manifest/);
    const small = new TarMemberCapture('backup_manifest', 10);
    small.write(tar);
    expect(() => small.content()).toThrow(/more than the 10 kept/);
    const garbage = new TarMemberCapture('backup_manifest', 1024);
    garbage.write(Buffer.alloc(2048, 0x41));
    expect(() => garbage.content()).toThrow(/not a ustar archive/);
  });
});

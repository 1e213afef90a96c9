import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EngineLayout } from '../../../agent/engines/manager.ts';
import { MariaDbManager } from '../../../agent/engines/mariadb.ts';
import { signal, waitFor } from '../../../agent/engines/process.ts';
import { upgradeState } from '../../../agent/engines/upgrade.ts';
import { ensureMariadbBuilds } from '../../../local/prerequisites.ts';
import { stopAndRemove, tempLayout } from './helpers.ts';

// The guest's side of Trove's upgrade on MariaDB: an instance created on 10.11.18 (the build
// local/install-packages.sh extracts) runs that build; an upgrade whose mariadb-upgrade is killed
// half-way comes back on 10.11.18 with its data; the next one moves it to the system's 10.11.19,
// mariadb-upgrade recorded in the data dir, the data equal.

async function query(layout: EngineLayout, sql: string): Promise<mysql.RowDataPacket[]> {
  const conn = await mysql.createConnection({
    socketPath: join(layout.baseDir, 'run', 'mysqld.sock'),
    user: 'root',
  });
  try {
    return (await conn.query(sql))[0] as mysql.RowDataPacket[];
  } finally {
    await conn.end();
  }
}

const version = async (layout: EngineLayout) => String((await query(layout, 'SELECT VERSION() AS v'))[0]?.v);
const checksum = async (layout: EngineLayout) =>
  String(
    (
      await query(
        layout,
        'SELECT CONCAT(COUNT(*), ":", MD5(GROUP_CONCAT(k, "=", v ORDER BY k))) AS s FROM appdb.kv',
      )
    )[0]?.s,
  );

/**
 * SIGKILLs mariadb-upgrade (the program, not runuser) of this instance once it runs and has
 * written its defaults file: in the instance's own temp dir, where a killed one leaves it.
 */
function killMariadbUpgrade(socket: string, ownTemp: string): Promise<true> {
  return waitFor(
    'mariadb-upgrade to run with its defaults file written',
    async () => {
      const written = (await readdir(ownTemp).catch(() => [])).some((f) => f.startsWith('mysql_upgrade-'));
      if (!written) return undefined;
      for (const entry of await readdir('/proc')) {
        if (!/^\d+$/.test(entry)) continue;
        const argv = (await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '')).split('\0');
        if (argv[0]?.endsWith('/mariadb-upgrade') && argv.includes(`--socket=${socket}`)) {
          signal(Number(entry), 'SIGKILL');
          return true;
        }
      }
      return undefined;
    },
    { timeoutMs: 60_000, intervalMs: 10 },
  );
}

/** mariadb-upgrade's defaults files in /tmp (its default: the agent sets no TMPDIR) naming this socket. */
async function sharedTempFilesNaming(socket: string): Promise<string[]> {
  const files = (await readdir('/tmp')).filter((f) => f.startsWith('mysql_upgrade-'));
  const texts = await Promise.all(files.map((f) => readFile(join('/tmp', f), 'utf8').catch(() => '')));
  return files.filter((_, i) => texts[i]?.includes(socket));
}

describe('mariadb upgrade 10.11.18 → 10.11 (agent)', () => {
  let layout: EngineLayout;
  let manager: MariaDbManager;
  let known = '';

  beforeAll(async () => {
    ensureMariadbBuilds();
    layout = { ...(await tempLayout('mdb-upgrade')), datastoreVersion: '10.11.18' };
    manager = new MariaDbManager(layout);
    await manager.prepare({ memoryMb: 256, databases: [{ name: 'appdb' }], users: [] });
    await query(layout, 'CREATE TABLE appdb.kv (k INT PRIMARY KEY, v VARCHAR(64) NOT NULL)');
    await query(layout, 'INSERT INTO appdb.kv SELECT seq, MD5(seq) FROM appdb.seq_1_to_5000');
    known = await checksum(layout);
  }, 60_000);
  afterAll(async () => {
    await stopAndRemove(manager, layout);
  });

  it('runs the build of its datastore version', async () => {
    expect(await version(layout)).toMatch(/^10\.11\.18-/);
    expect(manager.build().name).toBe('10.11.18');
    expect((await readFile(join(layout.baseDir, 'data', 'mysql_upgrade_info'), 'utf8')).trim()).toBe(
      '10.11.18-MariaDB',
    );
  });

  it('refuses a build that is not later, before touching anything', async () => {
    await expect(manager.upgrade('10.11.18')).rejects.toMatchObject({ name: 'UpgradeFailed', step: 'check' });
    expect(await version(layout)).toMatch(/^10\.11\.18-/);
  });

  it('comes back on 10.11.18 with its data when mariadb-upgrade is killed', async () => {
    const killed = killMariadbUpgrade(
      join(layout.baseDir, 'run', 'mysqld.sock'),
      join(layout.baseDir, 'upgrade-tmp'),
    );
    await expect(manager.upgrade('10.11')).rejects.toMatchObject({
      name: 'UpgradeFailed',
      step: 'mariadb-upgrade',
      message: expect.stringMatching(/upgrade to MariaDB 10\.11\.19 failed at step mariadb-upgrade/),
    });
    await killed;
    expect(await version(layout)).toMatch(/^10\.11\.18-/);
    expect(manager.build().name).toBe('10.11.18');
    expect(await checksum(layout)).toBe(known);
    expect((await readdir(layout.baseDir)).filter((f) => f.includes('before-upgrade'))).toEqual([]);
    expect(existsSync(join(layout.baseDir, 'upgrade.json'))).toBe(false);
    // The killed program's defaults file went with the instance's own temp dir.
    expect(existsSync(join(layout.baseDir, 'upgrade-tmp'))).toBe(false);
    expect(await sharedTempFilesNaming(join(layout.baseDir, 'run', 'mysqld.sock'))).toEqual([]);
  });

  it("undoes at the agent's next start an upgrade its agent died in, the upgrade's temp dir with it", async () => {
    // What an agent killed during mariadb-upgrade leaves: the upgrade's record (here with no kept
    // copy: the data dir was never left) and mariadb-upgrade's temp dir with its defaults file.
    const tmp = join(layout.baseDir, 'upgrade-tmp');
    await mkdir(tmp, { mode: 0o700 });
    await writeFile(
      join(tmp, 'mysql_upgrade-left'),
      `[client]\nsocket=${join(layout.baseDir, 'run', 'mysqld.sock')}\n`,
    );
    await upgradeState.save(layout.baseDir, {
      from: '10.11.18',
      to: '10.11.19',
      kept: join(layout.baseDir, 'data-10.11.18-before-upgrade'),
    });
    await manager.recoverInterruptedUpgrade();
    expect(existsSync(tmp)).toBe(false);
    expect(existsSync(join(layout.baseDir, 'upgrade.json'))).toBe(false);
    expect(await version(layout)).toMatch(/^10\.11\.18-/);
    expect(await checksum(layout)).toBe(known);
  });

  it('upgrades to 10.11.19 with mariadb-upgrade, the data equal', async () => {
    const result = await manager.upgrade('10.11');
    expect(result).toMatchObject({ from: '10.11.18', to: '10.11', method: 'mariadb-upgrade', rows: 5000 });
    expect(await version(layout)).toMatch(/^10\.11\.19-/);
    expect(await checksum(layout)).toBe(known);
    expect((await readFile(join(layout.baseDir, 'data', 'mysql_upgrade_info'), 'utf8')).trim()).toBe(
      '10.11.19-MariaDB',
    );
    expect(await readFile(join(layout.baseDir, 'mariadb-upgrade.log'), 'utf8')).toMatch(/Phase 8\/8/);
    // A restart (the agent's, after a reboot) runs the new build again.
    await manager.restart();
    expect(await version(layout)).toMatch(/^10\.11\.19-/);
  });
});

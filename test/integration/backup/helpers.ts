import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, open, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { CopyObjectCommand, ListMultipartUploadsCommand } from '@aws-sdk/client-s3';
import { expect } from 'vitest';
import type { BackupEngine, ChainObject } from '../../../agent/backup/index.ts';
import type { ProcessEngine } from '../../../agent/engines/base.ts';
import type { EngineLayout } from '../../../agent/engines/manager.ts';
import { freePort } from '../../../local/ports.ts';
import type { S3Fixture } from './s3-fixture.ts';

export const BUCKET = 'backups';
export const MB = 1024 * 1024;

/** A layout whose base dir does not exist yet, in a temp dir of its own (as a new instance's would). */
export async function newLayout(engine: BackupEngine): Promise<EngineLayout & { parent: string }> {
  const parent = await mkdtemp(join(tmpdir(), `tl-bk-${engine}-`));
  return { parent, baseDir: join(parent, 'i'), port: await freePort(), bindAddress: '127.0.0.1' };
}

export async function removeInstance(
  manager: ProcessEngine | undefined,
  layout: (EngineLayout & { parent: string }) | undefined,
): Promise<void> {
  if (manager) await manager.stop().catch(() => {});
  if (layout) await rm(layout.parent, { recursive: true, force: true });
}

/** What is in the base dir (nothing, when it does not exist). */
export async function entriesOf(dir: string): Promise<string[]> {
  return readdir(dir).catch(() => []);
}

/** Programs of the pipeline still running as children of this (test) process. */
export async function toolChildren(): Promise<string[]> {
  const names = new Set(['zstd', 'mariadb-backup', 'mbstream', 'pg_basebackup', 'redis-cli', 'tar']);
  const found: string[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
    const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (ppid === process.pid && names.has(comm)) found.push(`${entry} ${comm}`);
  }
  return found;
}

export async function openUploads(s3: S3Fixture): Promise<string[]> {
  const out = await s3.client.send(new ListMultipartUploadsCommand({ Bucket: BUCKET }));
  return (out.Uploads ?? []).map((u) => `${u.Key} ${u.UploadId}`);
}

/** A copy of `source` stored under `key` with one byte flipped in s3rver's file. */
export async function corruptCopy(s3: S3Fixture, source: string, key: string): Promise<void> {
  await s3.client.send(
    new CopyObjectCommand({ Bucket: BUCKET, Key: key, CopySource: `${BUCKET}/${source}` }),
  );
  const file = await open(s3.objectFile(BUCKET, key), 'r+');
  try {
    const { size } = await file.stat();
    const at = Math.floor(size / 2);
    const byte = Buffer.alloc(1);
    await file.read(byte, 0, 1, at);
    byte[0] = (byte[0] as number) ^ 0x01;
    await file.write(byte, 0, 1, at);
  } finally {
    await file.close();
  }
}

export function chainObject(key: string, checksum: string, dataKey: Buffer): ChainObject {
  return { bucket: BUCKET, key, checksum, dataKey };
}

/**
 * Peak resident memory of this process while `work` runs: the kernel's own high-water mark
 * (VmHWM), reset first through /proc/self/clear_refs, so short spikes between samples count too.
 */
export async function measure<T>(
  work: () => Promise<T>,
): Promise<{ result: T; ms: number; peakRssMb: number; baseRssMb: number }> {
  const baseRssMb = process.memoryUsage().rss / MB;
  await writeFile('/proc/self/clear_refs', '5');
  const started = performance.now();
  const result = await work();
  const ms = performance.now() - started;
  const status = await readFile('/proc/self/status', 'utf8');
  const hwmKb = Number(/^VmHWM:\s+(\d+) kB/m.exec(status)?.[1]);
  return { result, ms, peakRssMb: hwmKb / 1024, baseRssMb };
}

/** Seconds the engine's own tool needs to write the whole stream to /dev/null. */
export async function rawToolSeconds(
  command: string,
  args: string[],
  opts: { uid?: number; gid?: number; env?: Record<string, string>; cwd?: string } = {},
): Promise<number> {
  const devNull = await open('/dev/null', 'w');
  try {
    const started = performance.now();
    const child = spawn(command, args, {
      stdio: ['ignore', devNull.fd, 'pipe'],
      uid: opts.uid,
      gid: opts.gid,
      cwd: opts.cwd ?? '/',
      env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', ...opts.env },
    });
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-4000);
    });
    const [code] = (await once(child, 'exit')) as [number | null];
    if (code !== 0) throw new Error(`${command} exited with ${code}: ${stderr}`);
    return (performance.now() - started) / 1000;
  } finally {
    await devNull.close();
  }
}

export interface Figures {
  /** The data's size (the data dir's, for MariaDB and PostgreSQL): the common base of the MB/s figures. */
  dataMb: number;
  rawSeconds: number;
  /** The whole pipeline into the front with parts dropped (no s3rver disk writes). */
  discardMs?: number;
  pipelineMs: number;
  storedBytes: number;
  peakRssMb?: number;
  baseRssMb?: number;
}

export function report(engine: string, figures: Figures): void {
  const rate = (ms: number) =>
    `${(ms / 1000).toFixed(2)} s (${(figures.dataMb / (ms / 1000)).toFixed(1)} MB/s)`;
  const lines = [
    `[backup ${engine}] data ${figures.dataMb.toFixed(1)} MB`,
    `raw tool → /dev/null ${rate(figures.rawSeconds * 1000)}`,
    ...(figures.discardMs ? [`tool → zstd → AES-GCM → S3 parts dropped ${rate(figures.discardMs)}`] : []),
    `tool → zstd → AES-GCM → s3rver ${rate(figures.pipelineMs)}`,
    `stored ${(figures.storedBytes / MB).toFixed(1)} MB`,
  ];
  if (figures.peakRssMb !== undefined) {
    lines.push(
      `agent RSS ${figures.baseRssMb?.toFixed(0)} MB before, peak ${figures.peakRssMb.toFixed(0)} MB during`,
    );
  }
  lines.push(`load average ${loadavg()[0]?.toFixed(1)} on ${availableParallelism()} CPUs`);
  console.log(lines.join(' | '));
}

/** Expects `promise` to reject with a message matching `pattern`, and returns the error. */
export async function rejection(promise: Promise<unknown>, pattern: RegExp): Promise<Error> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e as Error,
  );
  expect(err, 'expected a rejection').toBeInstanceOf(Error);
  expect(err?.message).toMatch(pattern);
  return err as Error;
}

// bench/backup.ts's agent: one backup or restore (the job in TL_BENCH_JOB), run as the guest agent
// runs it. bench/backup.ts bundles this file as the guest image is built (local/agent-bundle.ts)
// and runs the bundle with node, as the compute host runs the agent: the memory measured is the
// production bundle's, not tsx's. The bundle holds the whole agent (the guest loop, its SQS client
// and reporter are loaded, one client made and the engine's manager loaded, as agent/main.ts does
// before any order), so the base RSS is the agent's at rest, not only that of the backup code.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { SQSClient } from '@aws-sdk/client-sqs';
import { type BackupEngine, restoreBackup, runBackup } from '../agent/backup/index.ts';
import { Doorbell } from '../agent/doorbell.ts';
import {
  createEngineManager,
  type DatastoreManager,
  type EngineLayout,
  type PrepareOptions,
} from '../agent/engines/index.ts';
import { Guest } from '../agent/guest.ts';
import { Reporter } from '../agent/reporter.ts';
import { s3Client } from '../lib/s3.ts';

export interface ChildJob {
  op: 'backup' | 'restore';
  engine: BackupEngine;
  manager: DatastoreManager;
  layout: EngineLayout;
  bucket: string;
  key: string;
  dataKey: string;
  checksum?: string;
  prepare?: PrepareOptions;
}

/** process.memoryUsage() in MB, at the highest RSS sampled while the work ran. */
export type MemoryAtPeak = Record<'rss' | 'heapTotal' | 'heapUsed' | 'external' | 'arrayBuffers', number>;

/**
 * Samples process.memoryUsage() every 10 ms and keeps the sample with the highest RSS: where a
 * peak is (V8's heap, buffers outside it, or neither: the allocator's own) tells what to cut.
 */
function sampleMemory(): () => MemoryAtPeak {
  let peak = process.memoryUsage();
  const timer = setInterval(() => {
    const now = process.memoryUsage();
    if (now.rss > peak.rss) peak = now;
  }, 10);
  return () => {
    clearInterval(timer);
    const mb = (n: number) => Math.round((n / 1024 / 1024) * 10) / 10;
    const { rss, heapTotal, heapUsed, external, arrayBuffers } = peak;
    return {
      rss: mb(rss),
      heapTotal: mb(heapTotal),
      heapUsed: mb(heapUsed),
      external: mb(external),
      arrayBuffers: mb(arrayBuffers),
    };
  };
}

const kb = (field: string) =>
  Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync('/proc/self/status', 'utf8'))?.[1]);

async function main(): Promise<void> {
  const job = JSON.parse(process.env.TL_BENCH_JOB ?? '{}') as ChildJob;
  // What agent/main.ts holds before its first order.
  const sqs = new SQSClient({ region: process.env.AWS_REGION });
  if (typeof Guest !== 'function' || typeof Reporter !== 'function') throw new Error('agent modules missing');
  const engine = await createEngineManager(job.manager, job.layout);
  // Its doorbell's connection, open (to the bench's stand-in for the WebSocket API): Node's
  // WebSocket client is in the agent's memory from its start.
  const doorbell = new AbortController();
  const bell = new Doorbell(process.env.TL_BENCH_DOORBELL ?? '', randomBytes(32), 'bench', () => {});
  const ringing = bell.run(doorbell.signal);
  for (let i = 0; i < 500 && !bell.open; i++) await new Promise((r) => setTimeout(r, 10));
  if (!bell.open) throw new Error('the doorbell did not open');
  // What its first create_backup (or a restoring prepare) loads: the backup code and S3's client.
  const s3 = s3Client();
  const dataKey = Buffer.from(job.dataKey, 'hex');
  const out: Record<string, unknown> = { baseRssKb: kb('VmRSS'), base: sampleMemory()() };
  const atPeak = sampleMemory();
  const t0 = performance.now();
  if (job.op === 'backup') {
    out.result = await runBackup(
      job.engine,
      job.layout,
      { bucket: job.bucket, key: job.key, s3 },
      dataKey,
      {},
    );
  } else {
    const chain = [{ bucket: job.bucket, key: job.key, checksum: job.checksum ?? '', dataKey }];
    await restoreBackup(job.engine, job.layout, chain, s3);
  }
  out.workMs = performance.now() - t0;
  out.atPeak = atPeak();
  out.workHwmKb = kb('VmHWM');
  if (job.op === 'restore') {
    if (!job.prepare) throw new Error('a restore job needs its prepare options');
    const t1 = performance.now();
    await engine.prepare(job.prepare);
    out.prepareMs = performance.now() - t1;
  }
  out.hwmKb = kb('VmHWM');
  s3.destroy();
  sqs.destroy();
  doorbell.abort();
  await ringing;
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

await main();
process.exit(0);

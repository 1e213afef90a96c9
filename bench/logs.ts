// `npm run bench -- logs [MB] [chunk bytes]`: publishes one large guest log (200 MB by default)
// the way the agent does (agent/logs/: read as a stream, uploaded as objects of Trove's
// guest_log_limit size, each with its line count) into the local S3 service, in a child node
// process (`node --import tsx`, as the agent runs), and prints the throughput and the child's
// memory: RSS once its modules are loaded, and its peak (VmHWM) over the publish. A flat memory
// means the peak stays near the start whatever the log's size.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { CreateBucketCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { freePort } from '../local/ports.ts';
import { ProcessGroup } from '../local/processes.ts';
import { startS3 } from '../local/s3.ts';

const BUCKET = 'bench-logs';
const MB = 1024 * 1024;

/** A general-log-like file of `bytes`, written in 1 MiB blocks (never held whole in memory). */
async function writeLog(path: string, bytes: number): Promise<void> {
  const out = createWriteStream(path);
  let written = 0;
  let n = 0;
  while (written < bytes) {
    const lines: string[] = [];
    let size = 0;
    while (size < MB && written + size < bytes) {
      const line = `2026-12-04 10:00:00 ${n++}\tQuery\tSELECT * FROM t WHERE id = ${n} AND payload = '${'x'.repeat(n % 60)}'\n`;
      lines.push(line);
      size += line.length;
    }
    const block = lines.join('');
    written += block.length;
    if (!out.write(block)) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
}

const CHILD = `// Written by bench/logs.ts: one publish, run as the guest agent runs it.
import { readFileSync } from 'node:fs';
const job = JSON.parse(process.env.TL_BENCH_JOB ?? '{}');
const kb = (field) =>
  Number(new RegExp('^' + field + ':\\\\s+(\\\\d+) kB', 'm').exec(readFileSync('/proc/self/status', 'utf8'))?.[1]);
const { GuestLogs } = await import(job.modules.logs);
const { s3Client } = await import(job.modules.s3);
const s3 = s3Client();
const logs = new GuestLogs([{ name: 'error', type: 'SYS', file: job.file }], { instanceId: job.instance, manager: 'mysql' }, job.state, () => s3);
const out = { baseRssKb: kb('VmRSS') };
const t0 = performance.now();
out.view = await logs.action({ name: 'error', publish: 1, bucket: job.bucket, root: 'database_logs/bench/',
  limit_bytes: job.limit, chunk_bytes: job.chunk, expiry_seconds: 2592000, exposed: null });
out.workMs = performance.now() - t0;
out.hwmKb = kb('VmHWM');
s3.destroy();
process.stdout.write(JSON.stringify(out) + '\\n');
process.exit(0);
`;

interface Report {
  baseRssKb: number;
  hwmKb: number;
  workMs: number;
  view: { published: number; status: string };
}

/** One publish of a fresh `sizeMb` log by a child process; its report and what was stored. */
async function publishOnce(root: string, endpoint: string, client: S3Client, sizeMb: number, chunk: number) {
  const instance = `bench-${sizeMb}`;
  const file = join(root, `${instance}.log`);
  await writeLog(file, sizeMb * MB);
  const size = (await stat(file)).size;
  const script = join(root, 'publish.mjs');
  await writeFile(script, CHILD);
  const repo = resolve(import.meta.dirname, '..');
  const job = {
    file,
    instance,
    state: join(root, `${instance}.json`),
    bucket: BUCKET,
    limit: size,
    chunk,
    modules: { logs: join(repo, 'agent/logs/index.ts'), s3: join(repo, 'lib/s3.ts') },
  };
  const child = spawn(process.execPath, ['--import', 'tsx', script], {
    cwd: repo,
    env: {
      ...process.env,
      TL_BENCH_JOB: JSON.stringify(job),
      AWS_ENDPOINT_URL_S3: endpoint,
      AWS_ACCESS_KEY_ID: 'S3RVER',
      AWS_SECRET_ACCESS_KEY: 'S3RVER',
      AWS_REGION: 'us-east-1',
      AWS_REQUEST_CHECKSUM_CALCULATION: 'WHEN_REQUIRED',
      AWS_RESPONSE_CHECKSUM_VALIDATION: 'WHEN_REQUIRED',
      TROVELESS_S3_FORCE_PATH_STYLE: 'true',
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let stdout = '';
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
  });
  const [code] = (await once(child, 'exit')) as [number];
  if (code !== 0) throw new Error(`publisher exited with ${code}`);
  const report = JSON.parse(stdout.trim().split('\n').pop() ?? '{}') as Report;
  let objects = 0;
  let stored = 0;
  let token: string | undefined;
  do {
    const page = await client.send(
      new ListObjectsV2Command({
        Bucket: BUCKET,
        Prefix: `database_logs/bench/${instance}/mysql-error/`,
        ContinuationToken: token,
      }),
    );
    for (const o of page.Contents ?? []) {
      objects++;
      stored += o.Size ?? 0;
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  await rm(file, { force: true });
  return { report, size, objects, stored };
}

export async function run(args: string[]): Promise<number> {
  // Two sizes, ten times apart: flat memory means the same peak for both.
  const sizes = (args[0] ?? '20,200').split(',').map(Number);
  const chunk = Number(args[1] ?? 1_000_000);
  const root = await mkdtemp(join(tmpdir(), 'tl-bench-logs-'));
  const procs = new ProcessGroup(join(root, 'pids.json'));
  let ok = true;
  try {
    const s3 = await startS3(procs, {
      port: await freePort(),
      dataDir: join(root, 's3'),
      logDir: join(root, 'logs'),
    });
    const client = new S3Client({
      endpoint: s3.endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    });
    await client.send(new CreateBucketCommand({ Bucket: BUCKET }));
    console.log(
      `guest log publish (agent/logs), objects of at most ${chunk} bytes, into the local S3 service`,
    );
    for (const sizeMb of sizes) {
      const { report, size, objects, stored } = await publishOnce(root, s3.endpoint, client, sizeMb, chunk);
      const seconds = report.workMs / 1000;
      console.log(
        `  ${(size / MB).toFixed(0)} MiB: ${report.view.status}, ${objects} objects, ${stored} of ${size} bytes stored; ` +
          `${seconds.toFixed(1)} s, ${(size / MB / seconds).toFixed(1)} MiB/s; agent RSS ${(report.baseRssKb / 1024).toFixed(1)} MiB ` +
          `with modules loaded, peak (VmHWM) ${(report.hwmKb / 1024).toFixed(1)} MiB`,
      );
      ok &&= report.view.published === size && stored === size;
    }
    client.destroy();
    await s3.close();
    return ok ? 0 : 1;
  } finally {
    await procs.stopAll();
    await rm(root, { recursive: true, force: true });
  }
}

import { randomUUID } from 'node:crypto';
import { mkdir, readdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type StoredEvent, storedEvent } from './history.ts';
import { isObject } from './protocol.ts';

export type ExecutionStatus = 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'ABORTED' | 'TIMED_OUT';

export interface ExecutionRecord {
  executionArn: string;
  stateMachineArn: string;
  stateMachineName: string;
  name: string;
  status: ExecutionStatus;
  /** Epoch milliseconds. */
  startDate: number;
  stopDate?: number;
  input: string;
  output?: string;
  error?: string;
  cause?: string;
  events: StoredEvent[];
  /** Times the execution was resumed after a restart of the runner (AWS's redriveCount). */
  redriveCount?: number;
  redriveDate?: number;
  /** The state the last resume started at, how many times in a row, and when it was first entered. */
  resume?: { state: string; count: number; enteredAt: number };
}

export const RESTART_ERROR = 'States.Runtime';
export const RESTART_CAUSE = 'Local Step Functions runner restarted during the execution';

/**
 * Executions in memory and, with a directory, one JSON file each (<dir>/<machine>/<execution>.json;
 * neither name may contain a slash). Files are replaced by rename so a crash mid-write leaves the
 * previous version, and writes of one execution are queued so an end state never loses to a
 * slower start write.
 */
export class ExecutionStore {
  private readonly records = new Map<string, ExecutionRecord>();
  private readonly writes = new Map<string, Promise<void>>();

  constructor(
    private readonly dir: string | undefined,
    private readonly log: (line: string) => void,
  ) {}

  /**
   * Loads what a previous process left, and returns the executions that were running when it
   * stopped: the caller resumes them (or fails them with `failInterrupted`).
   */
  async load(): Promise<ExecutionRecord[]> {
    const interrupted: ExecutionRecord[] = [];
    if (!this.dir) return interrupted;
    await mkdir(this.dir, { recursive: true });
    for (const machineDir of await readdir(this.dir, { withFileTypes: true })) {
      if (!machineDir.isDirectory()) continue;
      const folder = join(this.dir, machineDir.name);
      for (const file of await readdir(folder)) {
        const path = join(folder, file);
        if (file.endsWith('.tmp')) {
          await unlink(path).catch(() => undefined);
          continue;
        }
        if (!file.endsWith('.json')) continue;
        const record = await readRecord(path);
        if (!record) {
          this.log(`ignoring unreadable execution file ${path}`);
          continue;
        }
        this.records.set(record.executionArn, record);
        if (record.status === 'RUNNING') interrupted.push(record);
      }
    }
    return interrupted;
  }

  /** Ends an execution that a restart interrupted and that cannot go on. */
  async failInterrupted(record: ExecutionRecord, cause = RESTART_CAUSE): Promise<void> {
    finish(record, 'FAILED', { error: RESTART_ERROR, cause });
    record.events.push(
      storedEvent('ExecutionFailed', 'executionFailedEventDetails', { error: RESTART_ERROR, cause }),
    );
    this.log(
      `execution ${record.executionArn} was running at restart and cannot resume; marked FAILED (${cause})`,
    );
    await this.save(record);
  }

  get(executionArn: string): ExecutionRecord | undefined {
    return this.records.get(executionArn);
  }

  list(stateMachineArn: string): ExecutionRecord[] {
    return [...this.records.values()].filter((r) => r.stateMachineArn === stateMachineArn);
  }

  /** Claims the ARN synchronously, so a concurrent StartExecution of the same name sees it. */
  add(record: ExecutionRecord): void {
    this.records.set(record.executionArn, record);
  }

  remove(executionArn: string): void {
    this.records.delete(executionArn);
  }

  save(record: ExecutionRecord): Promise<void> {
    if (!this.dir) return Promise.resolve();
    const folder = join(this.dir, record.stateMachineName);
    const path = join(folder, `${record.name}.json`);
    const text = JSON.stringify(record);
    const previous = this.writes.get(record.executionArn) ?? Promise.resolve();
    const next = previous
      .catch(() => undefined)
      .then(async () => {
        await mkdir(folder, { recursive: true });
        const tmp = `${path}.${randomUUID()}.tmp`;
        await writeFile(tmp, text);
        await rename(tmp, path);
      });
    this.writes.set(record.executionArn, next);
    const forget = () => {
      if (this.writes.get(record.executionArn) === next) this.writes.delete(record.executionArn);
    };
    next.then(forget, forget);
    return next;
  }

  /** Waits for every queued write, failed or not. */
  async flush(): Promise<void> {
    await Promise.allSettled([...this.writes.values()]);
  }
}

export function finish(
  record: ExecutionRecord,
  status: Exclude<ExecutionStatus, 'RUNNING'>,
  result: { output?: string; error?: string; cause?: string },
): void {
  record.status = status;
  record.stopDate = Date.now();
  if (result.output !== undefined) record.output = result.output;
  if (result.error !== undefined) record.error = result.error;
  if (result.cause !== undefined) record.cause = result.cause;
}

async function readRecord(path: string): Promise<ExecutionRecord | undefined> {
  try {
    const value: unknown = JSON.parse(await readFile(path, 'utf8'));
    if (
      isObject(value) &&
      typeof value.executionArn === 'string' &&
      typeof value.stateMachineArn === 'string' &&
      typeof value.stateMachineName === 'string' &&
      typeof value.name === 'string' &&
      typeof value.status === 'string' &&
      typeof value.startDate === 'number' &&
      Array.isArray(value.events)
    ) {
      return value as unknown as ExecutionRecord;
    }
  } catch {
    // Reported by the caller.
  }
  return undefined;
}

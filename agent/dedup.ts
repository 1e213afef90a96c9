import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';

/**
 * A JSON file rewritten whole: through a temporary file and a rename, so that an agent killed
 * mid-write (or a full volume) leaves the old content, never a truncated file. One that cannot be
 * read starts empty rather than keep the agent from starting.
 */
function readJson<T>(file: string, empty: T): T {
  if (!existsSync(file)) return empty;
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as T;
  } catch {
    return empty;
  }
}

function writeJson(file: string, value: unknown): void {
  const partial = `${file}.partial`;
  writeFileSync(partial, JSON.stringify(value), { mode: 0o600 });
  renameSync(partial, file);
}

/**
 * Operation ids already run, kept on disk so that a redelivered order is not run twice even
 * across an agent restart. Bounded: the oldest ids go first, long after SQS stopped redelivering.
 */
export class SeenOperations {
  private readonly ids: string[];

  constructor(
    private readonly file: string,
    private readonly capacity = 1000,
  ) {
    this.ids = readJson<string[]>(file, []);
  }

  has(id: string): boolean {
    return this.ids.includes(id);
  }

  add(id: string): void {
    this.ids.push(id);
    if (this.ids.length > this.capacity) this.ids.splice(0, this.ids.length - this.capacity);
    writeJson(this.file, this.ids);
  }
}

/** An order's answer as the guest sent it (or tried to): what a redelivered order is answered with. */
export interface KeptAnswer {
  method: string;
  ok: boolean;
  result?: unknown;
  error?: { type: string; message: string };
}

/**
 * The answers of the last orders a workflow waits on (those with a reply token), kept on disk.
 * An answer can be lost on its way (the conductor's queue unreachable, or the agent stopped while
 * sending it), and the guest runs each order once: the workflow's retried send (a step retried, or
 * resumed after the control plane restarted) carries the same order id, and is answered from here
 * instead of waiting out its timeout. Bounded: a workflow retries within minutes. An answer too
 * large to keep (a workflow's are a few hundred bytes) is remembered as `unkept`: answered, so
 * never answered again with a failure that could contradict it.
 */
export class KeptAnswers {
  private readonly answers: [string, KeptAnswer | 'unkept'][];

  constructor(
    private readonly file: string,
    private readonly capacity = 50,
    private readonly maxBytes = 8 * 1024,
  ) {
    this.answers = readJson<[string, KeptAnswer | 'unkept'][]>(file, []);
  }

  get(id: string): KeptAnswer | 'unkept' | undefined {
    return this.answers.find(([kept]) => kept === id)?.[1];
  }

  keep(id: string, answer: KeptAnswer): void {
    const at = this.answers.findIndex(([kept]) => kept === id);
    if (at >= 0) this.answers.splice(at, 1);
    this.answers.push([id, JSON.stringify(answer).length > this.maxBytes ? 'unkept' : answer]);
    if (this.answers.length > this.capacity) this.answers.splice(0, this.answers.length - this.capacity);
    writeJson(this.file, this.answers);
  }
}

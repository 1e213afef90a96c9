import { existsSync, readFileSync, writeFileSync } from 'node:fs';

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
    this.ids = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as string[]) : [];
  }

  has(id: string): boolean {
    return this.ids.includes(id);
  }

  add(id: string): void {
    this.ids.push(id);
    if (this.ids.length > this.capacity) this.ids.splice(0, this.ids.length - this.capacity);
    writeFileSync(this.file, JSON.stringify(this.ids), { mode: 0o600 });
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
 * instead of waiting out its timeout. Bounded: a workflow retries within minutes.
 */
export class KeptAnswers {
  private readonly answers: [string, KeptAnswer][];

  constructor(
    private readonly file: string,
    private readonly capacity = 50,
    /** A larger result is not kept (a workflow's results are a few hundred bytes). */
    private readonly maxBytes = 64 * 1024,
  ) {
    this.answers = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as [string, KeptAnswer][]) : [];
  }

  get(id: string): KeptAnswer | undefined {
    return this.answers.find(([kept]) => kept === id)?.[1];
  }

  keep(id: string, answer: KeptAnswer): void {
    if (JSON.stringify(answer).length > this.maxBytes) return;
    const at = this.answers.findIndex(([kept]) => kept === id);
    if (at >= 0) this.answers.splice(at, 1);
    this.answers.push([id, answer]);
    if (this.answers.length > this.capacity) this.answers.splice(0, this.answers.length - this.capacity);
    writeFileSync(this.file, JSON.stringify(this.answers), { mode: 0o600 });
  }
}

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

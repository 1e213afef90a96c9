/**
 * Stalls of this process's event loop, which the benches share with the local clouds they start
 * (the SQS server, the workflows' runner, the event sources and the front door run in it): a
 * timer due every `tickMs` that fires more than `thresholdMs` late was held up by something.
 */
export class EventLoopStalls {
  private readonly delays: number[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly thresholdMs = 15,
    private readonly tickMs = 5,
  ) {}

  start(): this {
    let due = performance.now() + this.tickMs;
    this.timer = setInterval(() => {
      const now = performance.now();
      const late = now - due;
      if (late > this.thresholdMs) this.delays.push(late);
      due = now + this.tickMs;
    }, this.tickMs);
    this.timer.unref();
    return this;
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** One line: how many stalls over the threshold, and the longest ones. */
  summary(): string {
    const longest = [...this.delays].sort((a, b) => b - a).slice(0, 4);
    return `${this.delays.length} stalls over ${this.thresholdMs} ms${longest.length ? ` (longest ${longest.map((d) => d.toFixed(0)).join(', ')} ms)` : ''}`;
  }
}

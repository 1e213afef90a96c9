import { randomUUID } from 'node:crypto';
import { MAX_TIMER_SECONDS } from './definition.ts';
import { isObject, ServiceError } from './protocol.ts';

/**
 * An error for the library to treat as the Task's failure: Retry and Catch match on `name`, and the
 * message becomes the Cause.
 */
export function taskFailure(name: string, message: string): Error {
  const error = new Error(message);
  error.name = name;
  return error;
}

/**
 * A failure that Retry and Catch must not intercept. The library reads these two flags off the
 * error object (it does the same for its own States.Runtime errors).
 */
export class UnrecoverableTaskError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'States.Runtime';
  }
  get isRetryable(): boolean {
    return false;
  }
  get isCatchable(): boolean {
    return false;
  }
}

interface PendingTask {
  executionArn: string;
  resolve: (output: unknown) => void;
  reject: (error: Error) => void;
  heartbeat?: NodeJS.Timeout;
  expiresAt?: number;
}

/** Task tokens handed out by `.waitForTaskToken` states, and the states waiting on them. */
export class TaskTokens {
  private readonly pending = new Map<string, PendingTask>();

  /**
   * A new token and the promise of its outcome. The timeout only marks the token stale for
   * SendTask*: the library's own timer is what fails the state.
   */
  create(
    executionArn: string,
    heartbeatSeconds?: number,
    timeoutSeconds?: number,
  ): { token: string; outcome: Promise<unknown> } {
    // The execution ARN is inside the token so a token from before a restart is recognisable as
    // ours (TaskDoesNotExist) rather than garbage (InvalidToken).
    const token = Buffer.from(JSON.stringify({ executionArn, id: randomUUID() })).toString('base64url');
    const outcome = new Promise<unknown>((resolve, reject) => {
      const entry: PendingTask = { executionArn, resolve, reject };
      if (timeoutSeconds !== undefined) entry.expiresAt = Date.now() + timeoutSeconds * 1000;
      if (heartbeatSeconds !== undefined) {
        const ms = Math.min(heartbeatSeconds, MAX_TIMER_SECONDS) * 1000;
        entry.heartbeat = setTimeout(() => {
          this.settle(token, entry);
          reject(taskFailure('States.HeartbeatTimeout', `No heartbeat received for ${heartbeatSeconds} s`));
        }, ms);
      }
      this.pending.set(token, entry);
    });
    // A task cancelled after its execution ended has nobody awaiting it any more; its rejection
    // must not crash the local cloud as an unhandled one.
    outcome.catch(() => {});
    return { token, outcome };
  }

  succeed(token: string, output: unknown): void {
    const entry = this.lookup(token);
    this.settle(token, entry);
    entry.resolve(output);
  }

  fail(token: string, error: Error): void {
    const entry = this.lookup(token);
    this.settle(token, entry);
    entry.reject(error);
  }

  heartbeat(token: string): void {
    this.lookup(token).heartbeat?.refresh();
  }

  /** Drops a token without settling it; false if it was already settled. */
  abandon(token: string): boolean {
    const entry = this.pending.get(token);
    if (!entry) return false;
    this.settle(token, entry);
    return true;
  }

  /** Fails every task the execution is waiting on, so nothing of it lingers. */
  cancelExecution(executionArn: string, message: string): void {
    for (const [token, entry] of this.pending) {
      if (entry.executionArn !== executionArn) continue;
      this.settle(token, entry);
      entry.reject(new UnrecoverableTaskError(message));
    }
  }

  private lookup(token: string): PendingTask {
    if (!isOurToken(token)) throw new ServiceError('InvalidToken', 'Invalid Task Token');
    const entry = this.pending.get(token);
    if (!entry) throw new ServiceError('TaskDoesNotExist', 'Task Token does not exist');
    if (entry.expiresAt !== undefined && entry.expiresAt <= Date.now()) {
      this.settle(token, entry);
      throw new ServiceError('TaskTimedOut', 'Task Timed Out');
    }
    return entry;
  }

  private settle(token: string, entry: PendingTask): void {
    clearTimeout(entry.heartbeat);
    this.pending.delete(token);
  }
}

function isOurToken(token: string): boolean {
  try {
    const decoded: unknown = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
    return isObject(decoded) && typeof decoded.executionArn === 'string' && typeof decoded.id === 'string';
  } catch {
    return false;
  }
}

import { type ChildProcess, spawn } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';

// The external programs of a backup or restore (the engine's own tool, zstd, mbstream, tar) run
// as direct children of the agent, connected by pipes the agent itself reads and writes. (Handing
// one child's stdout to another as its stdin looks cheaper, but Node starts reading that pipe
// itself as well, so the two readers would split the stream between them.) A group of them is
// waited for as a whole: a backup is only good when every program in it exited with 0, and on any
// failure all of them are killed and reaped before the caller hears of it.

export interface ToolSpec {
  /** How the program is named in errors. */
  name: string;
  command: string;
  args: string[];
  /** Run as this user (the engine's service user) instead of root. */
  uid?: number;
  gid?: number;
  /** Added to a fixed, small environment (the agent's own variables stay with it). */
  env?: Record<string, string>;
  cwd?: string;
}

export interface Tool {
  readonly spec: ToolSpec;
  readonly child: ChildProcess;
  readonly stdin: Writable | null;
  readonly stdout: Readable | null;
  /** Resolves once the process has exited; a non-zero exit rejects with its stderr's last lines. */
  readonly done: Promise<void>;
}

const STDERR_TAIL_BYTES = 8 * 1024;

export class ToolGroup {
  private readonly tools: Tool[] = [];

  /**
   * Starts `spec`; stdin and stdout are pipes unless a file descriptor or 'ignore' is given.
   * stderr is kept (its last few KiB) for the error message.
   */
  start(
    spec: ToolSpec,
    stdio: { stdin?: 'pipe' | 'ignore' | number; stdout?: 'pipe' | 'ignore' | number } = {},
  ): Tool {
    const child = spawn(spec.command, spec.args, {
      cwd: spec.cwd ?? '/',
      uid: spec.uid,
      gid: spec.gid,
      env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C.UTF-8', TZ: 'UTC', ...spec.env },
      stdio: [stdio.stdin ?? 'pipe', stdio.stdout ?? 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (text: string) => {
      stderr = (stderr + text).slice(-STDERR_TAIL_BYTES);
    });
    // A killed reader makes our writes fail with EPIPE: the exit status tells the real story.
    child.stdin?.on('error', () => {});
    child.stdout?.on('error', () => {});
    const stderrEnded = new Promise<void>((resolve) => {
      if (!child.stderr) return resolve();
      child.stderr.once('close', resolve);
    });
    // 'exit' rather than 'close': 'close' also waits for stdout, which nobody reads any more once
    // a pipeline has failed. stderr is always read, so its end comes right after the exit.
    const done = new Promise<void>((resolve, reject) => {
      child.once('error', (err) => reject(new Error(`${spec.name} could not run: ${err.message}`)));
      child.once('exit', async (code, signal) => {
        await Promise.race([stderrEnded, new Promise((r) => setTimeout(r, 1_000).unref())]);
        if (code === 0) return resolve();
        const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
        const tail = stderr.trim().split('\n').slice(-15).join('\n');
        reject(new Error(`${spec.name} ${how}${tail ? `:\n${tail}` : ''}`));
      });
    });
    done.catch(() => {}); // observed through succeeded(), ownFailure() or kill()
    const tool: Tool = { spec, child, stdin: child.stdin, stdout: child.stdout, done };
    this.tools.push(tool);
    return tool;
  }

  /** Resolves when every program exited with 0; rejects with the first failure in pipeline order. */
  async succeeded(): Promise<void> {
    const results = await Promise.allSettled(this.tools.map((t) => t.done));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  /** The first failure that was not our own SIGKILL, once all have exited. */
  async ownFailure(): Promise<Error | undefined> {
    const results = await Promise.allSettled(this.tools.map((t) => t.done));
    for (const r of results) {
      if (r.status === 'rejected' && !(r.reason as Error).message.includes('killed by SIGKILL')) {
        return r.reason as Error;
      }
    }
    return undefined;
  }

  /** Runs one program to its end (nothing on stdin, stdout dropped); rejects like `done`. */
  static async run(spec: ToolSpec, signal?: AbortSignal): Promise<void> {
    const group = new ToolGroup();
    const tool = group.start(spec, { stdin: 'ignore', stdout: 'ignore' });
    const kill = () => void group.kill();
    signal?.addEventListener('abort', kill, { once: true });
    try {
      await tool.done;
    } finally {
      signal?.removeEventListener('abort', kill);
    }
  }

  /** SIGKILLs whatever still runs and waits until every process is gone. */
  async kill(): Promise<void> {
    for (const { child } of this.tools) {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      child.stdin?.destroy();
      child.stdout?.destroy();
    }
    await Promise.allSettled(this.tools.map((t) => t.done));
  }
}

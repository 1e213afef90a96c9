import type { ChildProcess } from 'node:child_process';
import { readdirSync } from 'node:fs';
import type { Socket } from 'node:net';
import { setPriority } from 'node:os';
import type { ServerUser } from './isolation.ts';
import { trySignal } from './procs.ts';
import { newServerId } from './records.ts';

/** An agent spawned ahead of a launch that has not come yet, under the server id it will have. */
export interface SpareAgent {
  id: string;
  child: ChildProcess;
  /** The server's OS user, made while the spare waits (isolation on): one step less at launch. */
  user?: ServerUser;
}

export interface SparesOptions {
  /** Spawns an agent awaiting its launch (AWAIT_LAUNCH_FLAG) for server `id` and `manager`. */
  spawn: (id: string, manager: string) => Promise<ChildProcess>;
  /** Makes server `id`'s OS user, once its spare runs (so its log, which names it, exists). */
  makeUser: (id: string) => Promise<ServerUser | undefined>;
  /** What a spare that is never used leaves: its log and its user. */
  discard: (id: string) => Promise<void>;
  log: (line: string) => void;
}

/** Lower than anything else on the host while it waits: it must not slow the launches it is for. */
const WAITING_NICENESS = 19;

/**
 * One guest agent per datastore manager, kept spawned ahead of the next launch of that manager
 * (issue 16: the control plane's part of a create under 0.5 s). An agent started when its
 * launch begins still loads node, its SQS client and its engine's module (~0.2 s of CPU) while
 * isolation is made, and on 2 cores the two slow each other; a spare has loaded before the
 * create is asked for. It is what the local compute host runs, as an EC2 warm pool keeps
 * instances booted: the first create of each manager after the host starts pays the whole start.
 *
 * A spare is root's and waits at niceness 19 (all its threads), so that loading never competes
 * with the launch or the engine it follows; it is set back to 0 when it is taken, before it
 * starts anything (its engine inherits its niceness). It reads no config until it is taken, and
 * exits when its stdin ends (the host stopped or died), so a host leaves no spare behind.
 */
export class SpareAgents {
  private readonly spares = new Map<string, SpareAgent>();
  private readonly pending = new Set<Promise<void>>();
  private closed = false;

  constructor(private readonly opts: SparesOptions) {}

  /** The server ids of the spares ready to be taken. */
  ids(): string[] {
    return [...this.spares.values()].map((spare) => spare.id);
  }

  /** The spare for `manager`, taken: it runs at normal priority from now on. */
  take(manager: string): SpareAgent | undefined {
    const spare = this.spares.get(manager);
    if (!spare) return undefined;
    this.spares.delete(manager);
    if (spare.child.exitCode !== null || spare.child.signalCode !== null) {
      void this.opts.discard(spare.id).catch(() => {});
      return undefined;
    }
    renice(spare.child.pid, 0);
    return spare;
  }

  /** A new spare for `manager` (in the background), unless one waits already. */
  refill(manager: string): void {
    if (this.closed || this.spares.has(manager)) return;
    const id = newServerId();
    const started = this.opts
      .spawn(id, manager)
      .then(async (child) => {
        // Only a root host can set a spare back to 0 once it is taken.
        if (process.getuid?.() === 0) renice(child.pid, WAITING_NICENESS);
        // A waiting spare's stdin keeps no host process alive (it ends with the host anyway).
        (child.stdin as Socket | null)?.unref();
        const spare: SpareAgent = { id, child };
        child.once('exit', () => {
          if (this.spares.get(manager) !== spare) return;
          this.spares.delete(manager);
          void this.opts.discard(id).catch(() => {});
        });
        // useradd (~60 ms, most of it forks and fsyncs) is the longest step of a launch's
        // isolation on its critical path (its firewall rules wait for the uid): made here, it is
        // off that path. A host killed meanwhile leaves the spare's log, by which its next start
        // finds the user and removes it (Guests.removeStrays).
        try {
          spare.user = await this.opts.makeUser(id);
        } catch (err) {
          await this.end(spare);
          throw err;
        }
        // One that exited meanwhile was not in the map for its exit to take it out: it goes now.
        const exited = child.exitCode !== null || child.signalCode !== null;
        if (exited || this.closed || this.spares.has(manager)) return this.end(spare);
        this.spares.set(manager, spare);
      })
      .catch((err) => this.opts.log(`a spare ${manager} agent could not be started: ${err}`))
      .finally(() => this.pending.delete(started));
    this.pending.add(started);
  }

  /** Every spare ends (stdin closed, then killed), its log and user go; none is made after this. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.pending);
    const spares = [...this.spares.values()];
    this.spares.clear();
    await Promise.all(spares.map((spare) => this.end(spare)));
  }

  private async end(spare: SpareAgent): Promise<void> {
    const { child } = spare;
    child.stdin?.end();
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((ok) => child.once('exit', ok));
      if (child.pid) trySignal(-child.pid, 'SIGKILL');
      await exited;
    }
    // A failure here (userdel) must not stop the host's close; the log stays, so its next start
    // finds the user and tries again.
    await this.opts
      .discard(spare.id)
      .catch((err) => this.opts.log(`the spare agent of server ${spare.id} left something: ${err}`));
  }
}

/**
 * Every thread of `pid` (Linux's niceness is per thread; a new thread inherits its creator's).
 * A thread made by one not yet reniced, after the list was read, would keep the old niceness:
 * so the list is read again until it holds no thread that was not reniced before it was read.
 * Then every thread alive was reniced, and any made later inherits the new niceness.
 */
function renice(pid: number | undefined, niceness: number): void {
  if (!pid) return;
  const done = new Set<string>();
  for (;;) {
    let tids: string[];
    try {
      tids = readdirSync(`/proc/${pid}/task`);
    } catch {
      return;
    }
    const fresh = tids.filter((tid) => !done.has(tid));
    if (fresh.length === 0) return;
    for (const tid of fresh) {
      done.add(tid);
      try {
        setPriority(Number(tid), niceness);
      } catch {
        // the thread ended meanwhile
      }
    }
  }
}

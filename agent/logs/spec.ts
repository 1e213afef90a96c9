// What an engine tells the guest about its logs (Trove's guest_log_defs): which logs exist, the
// file each is written to, and for USER logs how to turn them on and off in the engine's own
// settings. The publishing itself is the same for every engine (agent/logs/guest-log.ts).

export type LogType = 'USER' | 'SYS';

export interface GuestLogSpec {
  /** Trove's log names: general, slow_query, error. */
  name: string;
  /** SYS logs are always on and cannot be enabled or disabled; USER logs can. */
  type: LogType;
  /** The file the engine writes this log to (read, never written, by the publisher). */
  file: string;
  /** USER logs: whether the engine has the log on now (its own setting, read live). */
  enabled?: () => Promise<boolean>;
  /**
   * USER logs: turns the log on or off in the engine's own settings, live and persisted for the
   * next start. Returns whether the engine must restart before the change takes effect.
   */
  setEnabled?: (on: boolean) => Promise<{ restartRequired: boolean }>;
  /**
   * A log the engine keeps in memory, not in a file (Redis's SLOWLOG): appends the entries not yet
   * written to `file`, so that it is published like any other file.
   */
  render?: () => Promise<void>;
}

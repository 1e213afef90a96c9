import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  ChangeMessageVisibilityCommand,
  DeleteMessageCommand,
  ReceiveMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import type { AgentConfigFile } from '../lib/compute/driver.ts';
import { decryptWith, encryptFor } from '../lib/guest/sealed.ts';
import { nowSeconds, openEnvelope, parseGuestRequest, verifySignature } from '../lib/guest/signing.ts';
import type { BackupEngine } from './backup/layout.ts';
import { CLUSTER_OPERATIONS, runClusterOperation } from './cluster-operations.ts';
import { runDataOperation } from './data-operations.ts';
import { type KeptAnswer, KeptAnswers, SeenOperations } from './dedup.ts';
import type { Bell } from './doorbell.ts';
import type {
  DatabaseSpec,
  EngineLayout,
  EngineManager,
  ReplicationSource,
  UserSpec,
} from './engines/manager.ts';
import { ReplicationState } from './engines/replication-state.ts';
import { ReseedMarker, ReseedRequired } from './engines/reseed.ts';
import type { TlsMaterial } from './engines/tls.ts';
import type { GuestLogs } from './logs/index.ts';
import type { GuestModules } from './modules/index.ts';
import { pause } from './pause.ts';
import { REPLICATION_OPERATIONS, runReplicationOperation } from './replication-operations.ts';
import { SampleBatches } from './samples.ts';
import { TermStore } from './term.ts';

// What only some orders need is imported by the first order that does (`await import`): backups
// and restores (the S3 client), guest logs, modules, the source probe of a replica. An agent
// starts, and waits for its first order, with the engine's manager, its queue and little else:
// that start is on the path of every create, and what it never loads it never holds in memory.

type OverrideRule = { name: string; restart_required: boolean };

import type { HeartbeatPayload, Reporter } from './reporter.ts';

// An order older than this is refused even with a valid signature: a replay, not a late order.
const MAX_ORDER_AGE_SECONDS = 3600;

/**
 * A set with automatic failover: every member heartbeats this often (the source's silence is
 * measured against a failover expiry of a few seconds), and each replica probes its source's
 * engine this often. A cost (docs/cost.md): sixty heartbeats a minute instead of one.
 */
const FAILOVER_INTERVAL_MS = 1000;
/** An order whose answer could not be sent comes back this soon, to be answered again. */
const ANSWER_RETRY_SECONDS = 5;
/** How long a resize_fs watches an engine that is up but not answering (recovering) before it answers. */
const REVIVE_WATCH_MS = 30_000;
/** How long the source's engine has to answer a probe. */
const PROBE_TIMEOUT_MS = 1000;
/**
 * How long a new guest's first report waits for prepare, which reports "building" itself. The
 * create sends prepare a step after the launch (the certificate), about 0.1 s later: a report at
 * once is one more message, conductor call and first sight of the guest per create, which tells
 * the workflow nothing prepare's own report does not.
 */
const BOOT_REPORT_WAIT_MS = 2000;

type Log = (line: string, fields?: Record<string, unknown>) => void;

/** Galera's guest calls that restart or stop the engine. */
const GALERA_ENGINE_CHANGES = new Set(['galera_bootstrap', 'galera_join', 'galera_leave']);

/** The guest agent's loop: take signed orders from its own queue, run them, report the outcome. */
export class Guest {
  private running = true;
  /** Set while the guest's own queue is missing: no order can reach it, so it is not healthy. */
  private queueMissing = false;
  private readonly seen: SeenOperations;
  /** The answers of the last orders a workflow waits on: a redelivered one is answered again. */
  private readonly answers: KeptAnswers;
  /** The orders this process runs now: a redelivery of one of these waits for its first answer. */
  private readonly runningNow = new Set<string>();
  private readonly abort = new AbortController();
  private readonly prepared: string;
  /** The order being run, kept on disk: an agent that died running it reports it unfinished. */
  private readonly inFlight: string;
  /** Prepare's last heartbeat ("healthy"), sent with its answer. */
  private preparedBeat: HeartbeatPayload | undefined;
  /** What heartbeats say before prepare has finished: building, or failed to spawn. */
  private unprepared = 'building';
  /** Resolved when a prepare order is taken: its own "building" report stands for the boot's. */
  private prepareTaken!: () => void;
  private readonly prepareSeen = new Promise<void>((resolve) => {
    this.prepareTaken = resolve;
  });
  private logs?: GuestLogs;
  private readonly terms: TermStore;
  private readonly role: ReplicationState;
  /** Set while this member cannot follow its source without a re-seed (agent/engines/reseed.ts). */
  private readonly reseedMarker: ReseedMarker;
  private readonly samples: SampleBatches;
  /** Resolved the first time the receive loop would rest on its doorbell (or at stop). */
  private readonly restWanted = deferred();
  /**
   * The last probe of the source's engine (a replica with automatic failover only), and which
   * source it probed: a vote counts only for the source the member follows now. Right after a
   * repoint the last probe is still about the old (dead) source, and counted against the new
   * one it could start a second, spurious failover.
   */
  private vote: { source: string; reachable: boolean } | undefined;

  constructor(
    private readonly config: AgentConfigFile,
    private readonly key: Buffer,
    private readonly engine: EngineManager,
    private readonly sqs: SQSClient,
    private readonly reporter: Reporter,
    private readonly log: Log,
    /** The doorbell (./doorbell.ts), when the config names one. */
    private readonly doorbell?: Bell,
  ) {
    this.seen = new SeenOperations(join(config.layout.baseDir, 'operations-seen.json'));
    this.answers = new KeptAnswers(join(config.layout.baseDir, 'operations-answered.json'));
    this.prepared = join(config.layout.baseDir, 'prepared');
    this.inFlight = join(config.layout.baseDir, 'operation-in-flight.json');
    this.terms = new TermStore(config.layout.baseDir);
    this.role = new ReplicationState(config.layout.baseDir);
    this.reseedMarker = new ReseedMarker(config.layout.baseDir);
    this.samples = new SampleBatches({
      intervalSeconds: config.report_interval,
      // An agent launched without the setting keeps a sample per heartbeat, as before it existed.
      samplesPerWrite: config.metrics_samples_per_write ?? 1,
    });
  }

  private get automaticFailover(): boolean {
    return this.terms.failover === 'automatic';
  }

  /**
   * A replica of a set with automatic failover probes its source's engine every second; a change
   * is reported at once (a heartbeat), so the conductor hears a vote within about a second.
   */
  async probeLoop(): Promise<void> {
    while (this.running) {
      const role = this.automaticFailover && existsSync(this.prepared) ? await this.role.load() : undefined;
      if (role?.role === 'replica' && role.source) {
        const source = addressOf(role.source);
        const { engineAnswers } = await import('./source-probe.ts');
        const reachable = await engineAnswers(this.config.datastore_manager, role.source, PROBE_TIMEOUT_MS);
        const changed = this.vote?.source !== source || reachable !== this.vote.reachable;
        this.vote = { source, reachable };
        if (changed) {
          this.log(reachable ? 'source answers' : 'source does not answer', { source: role.source.host });
          await this.reportStatus();
        }
      } else this.vote = undefined;
      await pause(FAILOVER_INTERVAL_MS, this.abort.signal);
    }
  }

  /** After a reboot of the guest, a prepared engine is started again before orders are taken. */
  async boot(): Promise<void> {
    await this.reportInterrupted();
    // An upgrade cut short by a crash: the old version on its old data comes back first.
    await this.engine
      .recoverInterruptedUpgrade?.()
      .catch((err: Error) => this.log('undoing an interrupted upgrade failed', { error: err.message }));
    // A member waiting for its re-seed stays down: a PostgreSQL old source whose rewind could not
    // run would start as the primary it was, and take writes the set never gets.
    const reseed = this.reseedMarker.current();
    if (reseed) this.log('not starting the engine: it waits for a re-seed', { reason: reseed.reason });
    // start() on an engine that runs only waits until it answers and clears a stopped marker an
    // agent killed between the engine's spawn and that clear left behind (which would otherwise
    // make a later crash of this engine look like a stop on purpose).
    else if (existsSync(this.prepared)) {
      await this.engine
        .start()
        .catch((err: Error) => this.log('engine did not start at boot', { error: err.message }));
    }
  }

  /**
   * An order this agent's previous process started and never finished: the guest runs each order
   * once, so its workflow would otherwise wait (kept alive by heartbeats) for an answer that can
   * never come. It is answered as failed instead.
   */
  private async reportInterrupted(): Promise<void> {
    if (!existsSync(this.inFlight)) return;
    try {
      const order = JSON.parse(readFileSync(this.inFlight, 'utf8')) as {
        id: string;
        method: string;
        reply_token?: string;
      };
      // Its answer, if it had one (the agent stopped while sending it); else it did not finish.
      const kept = this.answers.get(order.id);
      if (kept === 'unkept') {
        rmSync(this.inFlight, { force: true });
        return;
      }
      const answer =
        kept ??
        interrupted(
          order.method,
          `The guest agent stopped while running ${order.method}; it did not finish.`,
        );
      // Kept first: if this report is lost too, the workflow's next send of the order gets it.
      if (order.reply_token) this.keepAnswer(order.id, answer);
      await this.sendAnswer(order, answer);
      rmSync(this.inFlight, { force: true });
    } catch (err) {
      this.log('could not report the interrupted operation', { error: (err as Error).message });
    }
  }

  stop(): void {
    this.running = false;
    this.abort.abort();
    this.restWanted.resolve();
  }

  async heartbeatLoop(): Promise<void> {
    // Unlike Trove's guest, this one reports from boot: the workflow waiting for prepare hears
    // that the guest started and is alive (a silent guest fails the build at once, not at
    // usage_timeout); the engine's status is reported once prepare has made one. A new guest's
    // first report waits a moment for prepare, which then reports for it.
    if (!existsSync(this.prepared) && (await this.prepareWithin(BOOT_REPORT_WAIT_MS)))
      await this.untilNextReport();
    while (this.running) {
      const beat = existsSync(this.prepared)
        ? this.heartbeat()
        : this.reporter.heartbeat({ service_status: this.unprepared });
      await beat.catch((err: Error) => this.log('heartbeat failed', { error: err.message }));
      await this.untilNextReport();
    }
  }

  /**
   * The wait is held against the interval as it is each second, not as it was when the wait
   * began: a member's agent starts (and a standalone source runs) on report_interval, and the
   * set_replication_mode that turns failover on arrives in the middle of that wait. Fixed then,
   * the wait ran its whole 60 s, and with it a replica's only votes were those its probe sent
   * on a change: one at the source's death, before the source was silent past the failover
   * expiry, and the next one up to a minute later (a failover 45 s after the death).
   */
  private async untilNextReport(): Promise<void> {
    const since = performance.now();
    for (;;) {
      const left = since + this.heartbeatIntervalMs() - performance.now();
      if (left <= 0 || !this.running) return;
      await pause(Math.min(left, FAILOVER_INTERVAL_MS), this.abort.signal);
    }
  }

  /** Whether a prepare order is taken within `ms` (false too if the agent stops first). */
  private async prepareWithin(ms: number): Promise<boolean> {
    let taken = false;
    await Promise.race([this.prepareSeen.then(() => (taken = true)), pause(ms, this.abort.signal)]);
    return taken;
  }

  private heartbeatIntervalMs(): number {
    const interval = this.config.report_interval * 1000;
    return this.automaticFailover ? Math.min(FAILOVER_INTERVAL_MS, interval) : interval;
  }

  /**
   * The doorbell's connection, held while the agent runs (none without a doorbell URL), from the
   * first time the receive loop would rest: not at boot, where loading the WebSocket client and
   * the $connect call would hold up the first poll, the one that takes a create's prepare.
   */
  async doorbellLoop(): Promise<void> {
    if (!this.doorbell) return;
    await this.restWanted.promise;
    await this.doorbell.run(this.abort.signal);
  }

  /**
   * Orders off the instance's queue, one at a time. With a doorbell open, a guest at rest does not
   * long-poll: it waits for a ring (or an opening of the doorbell, or rest_poll_seconds), then
   * polls until busy_seconds have passed without an order (a workflow's next order often follows
   * within seconds). Without one (none configured, or its connection down), it long-polls all
   * the time.
   */
  async receiveLoop(): Promise<void> {
    const busyMs = (this.config.doorbell?.busy_seconds ?? 60) * 1000;
    const restPollMs = (this.config.doorbell?.rest_poll_seconds ?? 300) * 1000;
    let busyUntil = performance.now() + busyMs;
    // Rings seen before the last poll began: one that comes during a poll is not slept through.
    let seen = -1;
    let resting = false;
    while (this.running) {
      const bell = this.doorbell;
      if (bell) {
        const idle = performance.now() >= busyUntil;
        if (idle) this.restWanted.resolve();
        if (idle && bell.open) {
          // Said once per rest: what an operator reads to know why the queue is not polled.
          if (!resting) this.log('at rest: the queue is polled when the doorbell rings');
          resting = true;
          await bell.wait(seen, restPollMs, this.abort.signal);
        }
        if (!this.running) return;
        seen = bell.rings;
      }
      try {
        const out = await this.sqs.send(
          new ReceiveMessageCommand({
            QueueUrl: this.config.guest_queue_url,
            MaxNumberOfMessages: 1,
            WaitTimeSeconds: 20,
          }),
          { abortSignal: this.abort.signal },
        );
        if (this.queueMissing) this.log('guest queue is back');
        this.queueMissing = false;
        const messages = out.Messages ?? [];
        for (const message of messages) {
          const answered = await this.handle(message.Body ?? '').then(
            () => true,
            (err: Error) => {
              this.log('answer not sent: the order comes again', { error: err.message });
              return false;
            },
          );
          if (!answered) {
            // Back on the queue in a few seconds rather than after the queue's visibility timeout
            // (300 s, longer than a restart's wait): it is answered again from the kept answer.
            await this.sqs
              .send(
                new ChangeMessageVisibilityCommand({
                  QueueUrl: this.config.guest_queue_url,
                  ReceiptHandle: message.ReceiptHandle,
                  VisibilityTimeout: ANSWER_RETRY_SECONDS,
                }),
              )
              .catch(() => {});
            continue;
          }
          await this.sqs.send(
            new DeleteMessageCommand({
              QueueUrl: this.config.guest_queue_url,
              ReceiptHandle: message.ReceiptHandle,
            }),
          );
        }
        // Counted from the end of an order, however long it ran (a backup's next order follows it).
        if (messages.length) {
          busyUntil = performance.now() + busyMs;
          resting = false;
        }
      } catch (err) {
        if (!this.running) return;
        if (isMissingQueue(err)) {
          // Logged once, and reported: the next heartbeat says the agent cannot work.
          if (!this.queueMissing) this.log('guest queue is missing', { queue: this.config.guest_queue_url });
          this.queueMissing = true;
        } else {
          this.log('receive failed', { error: (err as Error).message });
        }
        await pause(1000, this.abort.signal);
      }
    }
  }

  /** Verifies and runs one order; unsigned, forged, foreign or replayed orders are dropped. */
  async handle(text: string): Promise<void> {
    const envelope = openEnvelope(text);
    if (
      !envelope ||
      envelope.instance_id !== this.config.instance_id ||
      !verifySignature(this.key, envelope)
    ) {
      this.log('order rejected: not signed with this instance key');
      return;
    }
    const order = parseGuestRequest(envelope.body);
    if (!order || order.instance_id !== this.config.instance_id) {
      this.log('order rejected: malformed');
      return;
    }
    if (nowSeconds() - order.sent > MAX_ORDER_AGE_SECONDS) {
      this.log('order rejected: too old', { operation: order.method, id: order.id });
      return;
    }
    if (this.seen.has(order.id)) {
      // A workflow's order sent again (its step retried, or resumed after a restart of the
      // control plane) while its answer may have been lost: answered again, never run again.
      if (order.reply_token && !this.runningNow.has(order.id)) return this.answerAgain(order);
      this.log('order ignored: already run', { operation: order.method, id: order.id });
      return;
    }
    this.seen.add(order.id);
    this.runningNow.add(order.id);
    writeFileSync(
      this.inFlight,
      JSON.stringify({ id: order.id, method: order.method, reply_token: order.reply_token }),
      { mode: 0o600 },
    );
    this.log('running', { operation: order.method, id: order.id });
    try {
      let answer: KeptAnswer;
      let beat: HeartbeatPayload | undefined;
      try {
        answer = { method: order.method, ok: true, result: await this.run(order.method, order.args) };
        beat = order.method === 'prepare' ? this.preparedBeat : undefined;
        this.preparedBeat = undefined;
      } catch (err) {
        const error = { type: (err as Error).name || 'Error', message: (err as Error).message };
        this.log('operation failed', { operation: order.method, error: error.message });
        answer = { method: order.method, ok: false, error };
      }
      // Kept before it is sent: an answer lost on its way is sent again when the order comes
      // again (a failed send leaves the order's message on the queue, which delivers it again),
      // or by the next agent's boot if this one stops before it is sent (the in-flight record).
      if (order.reply_token) this.keepAnswer(order.id, answer);
      await this.sendAnswer(order, answer, beat);
      rmSync(this.inFlight, { force: true });
    } finally {
      this.runningNow.delete(order.id);
      // A call nobody waits on through a workflow (no reply token) is not answered again: its
      // caller has given up by the next boot, and "did not finish" would not be true.
      if (!order.reply_token) rmSync(this.inFlight, { force: true });
    }
  }

  private keepAnswer(id: string, answer: KeptAnswer): void {
    try {
      this.answers.keep(id, answer);
    } catch (err) {
      this.log('answer not kept', { id, error: (err as Error).message });
    }
  }

  private async answerAgain(order: { id: string; method: string; reply_token?: string }): Promise<void> {
    const kept = this.answers.get(order.id);
    if (kept === 'unkept') {
      // Answered, but too large to keep: sending a failure now could contradict it.
      this.log('order ignored: already run', { operation: order.method, id: order.id });
      return;
    }
    this.log('order already run: its answer sent again', {
      operation: order.method,
      id: order.id,
      kept: Boolean(kept),
    });
    await this.sendAnswer(
      order,
      // Seen, not running, no answer kept: its run ended in an earlier process without one.
      kept ??
        interrupted(
          order.method,
          `The guest agent has no answer of ${order.method} to give; it may not have finished.`,
        ),
    );
  }

  private async sendAnswer(
    order: { id: string; method: string; reply_token?: string },
    answer: KeptAnswer,
    beat?: HeartbeatPayload,
  ): Promise<void> {
    // A prepare answered again goes with the heartbeat a create waits for, as the first one did.
    if (!beat && answer.ok && order.method === 'prepare' && existsSync(this.prepared))
      beat = await this.heartbeatPayload().catch(() => undefined);
    return this.reporter.result(
      {
        operation_id: order.id,
        operation: order.method,
        reply_token: order.reply_token,
        ok: answer.ok,
        ...(answer.ok ? { result: answer.result } : { error: answer.error }),
      },
      beat,
    );
  }

  private async run(method: string, args: Record<string, unknown>): Promise<unknown> {
    switch (method) {
      case 'prepare':
        return this.prepare(args);
      case 'restart':
        await this.engine.restart();
        await this.reportStatus();
        return null;
      case 'stop_db':
        await this.engine.stop();
        await this.reportStatus();
        return null;
      case 'get_filesystem_stats':
        return this.engine.filesystemStats();
      // Trove's resize: the engine restarted with the new flavor's memory (or the old one's,
      // when a resize is reverted), then the heartbeat says how it runs.
      case 'start_db_with_conf_changes': {
        const memoryMb = Number(args.memory_mb);
        try {
          await this.engine.startWithMemory(memoryMb);
        } finally {
          await this.reportStatus();
        }
        return null;
      }
      case 'resize_fs': {
        const stats = await this.engine.resizeFilesystem();
        await this.reviveWithRoom();
        await this.reportStatus();
        return stats;
      }
      // Trove's upgrade: the engine moved to a new datastore version, or back on the old one
      // with an error naming the step that failed; then the heartbeat says how it runs.
      case 'upgrade': {
        if (!this.engine.upgrade)
          throw new Error(`${this.config.datastore_manager} has no major-version upgrade here`);
        try {
          return await this.engine.upgrade(String(args.datastore_version));
        } finally {
          await this.reportStatus();
        }
      }
      case 'create_backup':
        return this.backup(this.withSecrets(args));
      case 'guest_log_list':
        return (await this.guestLogs()).list(args);
      case 'guest_log_action':
        return (await this.guestLogs()).action(args);
      case 'module_list':
        return (await this.modules()).list(args);
      // A module's contents travel sealed with this guest's key.
      case 'module_apply':
        return (await this.modules()).apply(this.withSecrets(args));
      case 'module_remove':
        return (await this.modules()).remove(args);
      case 'get_replication_snapshot':
        return this.replicationSnapshot(this.withSecrets(args));
      case 'reseed_replica':
        this.terms.admit(method, args.term);
        return this.reseed(this.withSecrets(args));
      default:
        if (CLUSTER_OPERATIONS.has(method)) {
          const result = await runClusterOperation(
            this.engine,
            this.config.datastore_manager,
            method,
            // Galera's SST password arrives sealed with this guest's key.
            this.withSecrets(args),
            (payload) => encryptFor(this.key, payload),
          );
          // Galera's bootstrap, join and leave restart or stop the engine, and a status of Synced
          // is the first sign that it serves again: the heartbeat says so now, not at the next
          // interval (a cluster's task returns to NONE only once every member reports up).
          const synced = (result as { local_state?: string } | null)?.local_state === 'Synced';
          if (GALERA_ENGINE_CHANGES.has(method) || (method === 'galera_status' && synced))
            await this.reportStatus();
          return result;
        }
        if (REPLICATION_OPERATIONS.has(method)) {
          // The fence: an order of an older term than this member has seen never runs.
          this.terms.admit(method, args.term);
          if (method === 'set_replication_mode') this.terms.setFailover(args.failover);
          const result = await runReplicationOperation(this.engine, method, this.withSecrets(args)).catch(
            async (err: Error) => {
              // Said in every heartbeat from now on, whoever sent the order (often nobody waits:
              // an old source runs the order left on its queue when it comes back).
              if (err instanceof ReseedRequired) {
                await this.reseedMarker.save(err.message);
                await this.reportStatus();
              }
              throw err;
            },
          );
          if (method === 'attach_replica') await this.reseedMarker.clear();
          await this.reportStatus();
          return result;
        }
        return runDataOperation(this.engine, method, this.withSecrets(args));
    }
  }

  /** Trove's guest logs of this engine, published through each order's upload grant. */
  private async guestLogs(): Promise<GuestLogs> {
    if (!this.logs) {
      const { GuestLogs } = await import('./logs/index.ts');
      this.logs ??= new GuestLogs(
        this.engine.guestLogs(),
        { instanceId: this.config.instance_id, manager: this.config.datastore_manager },
        join(this.config.layout.baseDir, 'guest-logs.json'),
      );
    }
    return this.logs;
  }

  private async modules(): Promise<GuestModules> {
    const { GuestModules } = await import('./modules/index.ts');
    return new GuestModules(join(this.config.layout.baseDir, 'modules'), this.config.datastore_manager);
  }

  /** Passwords arrive encrypted with this guest's key, inside the signed order. */
  private withSecrets(args: Record<string, unknown>): Record<string, unknown> {
    if (typeof args.sealed !== 'string') return args;
    const { sealed, ...rest } = args;
    return { ...rest, ...(decryptWith(this.key, sealed) as Record<string, unknown>) };
  }

  /**
   * The layout the backup tools get: with the instance's datastore version, which is what a
   * restore has to go by (no data dir has said which version wrote it yet); it was missing, and a
   * PostgreSQL 17 restore of an incremental was refused as if the instance ran 15.
   */
  private get backupLayout(): EngineLayout {
    return { ...this.config.layout, datastoreVersion: this.config.datastore_version };
  }

  /** Streams a backup to S3 (tool → zstd → AES-256-GCM → multipart) and answers with what it stored. */
  private async backup(args: Record<string, unknown>) {
    const dataKey = Buffer.from(String(args.data_key), 'base64');
    const parent = args.parent_manifest as { bucket?: unknown; key?: unknown } | undefined;
    const [{ runBackup }, { s3Client }] = await Promise.all([
      import('./backup/index.ts'),
      import('../lib/s3.ts'),
    ]);
    return runBackup(
      backupEngineOf(this.config.datastore_manager),
      this.backupLayout,
      { bucket: String(args.bucket), key: String(args.key), s3: s3Client() },
      dataKey,
      {
        parentLsn: typeof args.parent_lsn === 'string' ? args.parent_lsn : undefined,
        parentManifest:
          parent && typeof parent.bucket === 'string' && typeof parent.key === 'string'
            ? {
                bucket: parent.bucket,
                key: parent.key,
                dataKey: Buffer.from(String(args.parent_data_key), 'base64'),
              }
            : undefined,
        // A replica's snapshot is never the parent of an incremental: no manifest beside it.
        storeManifest: args.snapshot !== true,
      },
    );
  }

  /**
   * Trove's get_replication_snapshot: this instance becomes able to feed replicas (the set's
   * replication account), then a full backup of it goes to S3 through the backup pipeline; the
   * replica restores it and follows from the position it is consistent with.
   */
  private async replicationSnapshot(args: Record<string, unknown>) {
    await this.engine.enableAsSource(args.account as { user: string; password: string });
    return this.backup({ ...args, parent_lsn: undefined, parent_manifest: undefined, snapshot: true });
  }

  /**
   * A re-seed (lib/replication/reseed.ts): the snapshot the source just took replaces this
   * member's data (its own configuration, TLS and role kept), then it follows the source. What it
   * wrote that the set never got is discarded: that is the point.
   */
  private async reseed(args: Record<string, unknown>): Promise<null> {
    const source = args.source as ReplicationSource | undefined;
    const restore = args.restore as { bucket: string; key: string; data_key: string }[] | undefined;
    const checksum = typeof args.snapshot_checksum === 'string' ? args.snapshot_checksum : '';
    if (!source || !restore?.length) throw new Error('reseed_replica needs a source and a snapshot');
    this.log('re-seeding from a snapshot of the source', { source: source.host });
    const [{ restoreBackup }, { s3Client }] = await Promise.all([
      import('./backup/index.ts'),
      import('../lib/s3.ts'),
    ]);
    try {
      await this.engine.reseed(
        () =>
          restoreBackup(
            backupEngineOf(this.config.datastore_manager),
            this.backupLayout,
            restore.map((o) => ({
              bucket: o.bucket,
              key: o.key,
              checksum,
              dataKey: Buffer.from(o.data_key, 'base64'),
            })),
            s3Client(),
            { signal: this.abort.signal },
          ),
        source,
      );
    } finally {
      await this.reportStatus();
    }
    await this.reseedMarker.clear();
    await this.reportStatus();
    return null;
  }

  private async prepare(args: Record<string, unknown>): Promise<null> {
    this.prepareTaken();
    // Sent beside the engine's work, not before it: the workflow hears that the guest builds,
    // and the engine's init does not wait on the queue. Each later report waits for it, so the
    // reports reach the conductor in their order (it keeps the newest anyway).
    const building = this.reporter
      .heartbeat({ service_status: 'building' })
      .catch((err: Error) => this.log('heartbeat failed', { error: err.message }));
    const { databases, users, restore, account, modules } = (
      typeof args.sealed === 'string' ? decryptWith(this.key, args.sealed) : {}
    ) as {
      databases?: DatabaseSpec[];
      users?: UserSpec[];
      modules?: unknown[];
      restore?: { bucket: string; key: string; checksum: string; data_key: string }[];
      account?: { user: string; password: string };
    };
    // A replica follows its source (where it listens comes in the clear, the account sealed).
    const replicaOf = args.replica_of as { host: string; port: number } | undefined;
    const replication: ReplicationSource | undefined =
      replicaOf && account ? { host: replicaOf.host, port: replicaOf.port, ...account } : undefined;
    // A replica's snapshot: its checksum is known only once the source has taken it.
    const snapshotChecksum = typeof args.snapshot_checksum === 'string' ? args.snapshot_checksum : undefined;
    for (const object of restore ?? [])
      if (!object.checksum && snapshotChecksum) object.checksum = snapshotChecksum;
    try {
      // A restore builds the data dir from the backup chain first (every object verified before
      // anything is written); prepare then starts the engine on it.
      if (restore?.length && !existsSync(this.prepared)) {
        const [{ restoreBackup }, { s3Client }] = await Promise.all([
          import('./backup/index.ts'),
          import('../lib/s3.ts'),
        ]);
        await restoreBackup(
          backupEngineOf(this.config.datastore_manager),
          this.backupLayout,
          restore.map((o) => ({
            bucket: o.bucket,
            key: o.key,
            checksum: o.checksum,
            dataKey: Buffer.from(o.data_key, 'base64'),
          })),
          s3Client(),
        );
      }
      await this.engine.prepare({
        memoryMb: Number(args.memory_mb ?? 512),
        databases: databases ?? [],
        users: users ?? [],
        replication,
        // Trove's cluster_config: a member starts in its engine's cluster mode.
        cluster: args.cluster_config !== undefined && args.cluster_config !== null,
        // The instance's TLS key and certificate, sealed with this guest's key (never logged).
        tls:
          typeof args.sealed_tls === 'string'
            ? (decryptWith(this.key, args.sealed_tls) as TlsMaterial)
            : undefined,
      });
    } catch (err) {
      this.unprepared = 'failed to spawn';
      await building;
      await this.reporter.heartbeat({ service_status: 'failed to spawn' });
      throw Object.assign(err as Error, { name: 'PrepareFailed' });
    }
    // A group given at create: applied now, and a restart here rather than a RESTART_REQUIRED
    // on an instance that was never ACTIVE.
    const overrides = args.overrides as
      | { values: Record<string, string | number | boolean>; rules: OverrideRule[] }
      | undefined;
    if (overrides && Object.keys(overrides.values).length) {
      const { restartRequired } = await this.engine.applyOverrides(overrides.values, overrides.rules);
      if (restartRequired) await this.engine.restart();
    }
    // Trove's prepare applies the instance's modules last, and a module that fails does not
    // fail the build: its status says so in module-query.
    if (modules?.length) {
      try {
        (await this.modules()).apply({ modules });
      } catch (err) {
        this.log('an error occurred applying modules', { error: (err as Error).message });
      }
    }
    writeFileSync(this.prepared, new Date().toISOString());
    // One line of `name N ms` pairs: the provision bench sets them beside the compute host's.
    if (this.engine.prepareTimings) this.log('prepared', { phases: String(this.engine.prepareTimings) });
    await building;
    // The "healthy" heartbeat the create waits for goes with prepare's answer, in one request.
    this.preparedBeat = await this.heartbeatPayload();
    return null;
  }

  /**
   * After a volume grew: an engine that died for want of room (PostgreSQL's PANIC when its WAL
   * cannot be written) starts again on the room it has now. One may still be dying when the room
   * comes (the postmaster's crash recovery, which fails without room, then the postmaster exits):
   * it is watched for a while, and started once it has stopped on its own. Never one stopped on
   * purpose (`shutdown`).
   */
  private async reviveWithRoom(): Promise<void> {
    const deadline = Date.now() + REVIVE_WATCH_MS;
    for (;;) {
      const status = await this.engine.status();
      if (status === 'crashed') {
        await this.engine
          .start()
          .catch((err: Error) => this.log('engine did not start after resize_fs', { error: err.message }));
        return;
      }
      if (status !== 'running' || Date.now() >= deadline) return;
      await pause(500, this.abort.signal);
    }
  }

  /** The last probe's answer if it probed the source this member follows now (its role file). */
  private async currentVote(): Promise<boolean | undefined> {
    if (!this.vote) return undefined;
    const role = await this.role.load().catch(() => undefined);
    return role?.source && addressOf(role.source) === this.vote.source ? this.vote.reachable : undefined;
  }

  private async heartbeat(): Promise<void> {
    await this.reporter.heartbeat(await this.heartbeatPayload());
  }

  /**
   * The heartbeat an order sends before its answer, so that the status is current when its
   * workflow ends. A failed one does not fail the order: the engine did what it was told, the
   * answer says so (it is kept and sent again if lost), and the next heartbeat says how it runs.
   */
  private async reportStatus(): Promise<void> {
    await this.heartbeat().catch((err: Error) => this.log('heartbeat failed', { error: err.message }));
  }

  private async heartbeatPayload(): Promise<HeartbeatPayload> {
    // Trove's status for an agent that runs but cannot serve: never HEALTHY without a queue.
    if (this.queueMissing) return { service_status: 'guestagent error' };
    const [status, volume] = await Promise.all([
      this.engine.status(),
      this.engine.filesystemStats().catch(() => undefined),
    ]);
    // While the engine is healthy, each heartbeat reads its counters for GET /metrics (a sample is
    // kept when they cannot be read, with its status) and how replication stands (issue 12 #3):
    // role, source, lag, the engine's error.
    const healthy = status === 'healthy';
    // Asked side by side: this heartbeat is the one a create waits for after prepare.
    const [metrics, replication] = healthy
      ? await Promise.all([
          Promise.resolve()
            .then(() => this.engine.counters())
            .catch(() => ({})),
          Promise.resolve()
            .then(() => this.engine.replicationStatus())
            .catch(() => undefined),
        ])
      : [{}, undefined];
    const vote = replication?.role === 'replica' ? await this.currentVote() : undefined;
    // This heartbeat's sample for GET /metrics; the samples travel a bucket at a time.
    const samples = this.samples.add({
      t: nowSeconds(),
      service_status: status,
      ...(volume ? { volume_used_bytes: volume.used_bytes } : {}),
      ...metrics,
    });
    // Said with or without a running engine (a PostgreSQL member left down by a failed rewind).
    const reseed = this.reseedMarker.current();
    return {
      service_status: status,
      ...(volume ? { volume } : {}),
      ...(samples ? { samples } : {}),
      ...(replication || reseed
        ? {
            replication: {
              ...boundedReport(replication ?? { role: 'replica' as const }),
              ...(reseed ? { reseed_required: reseed } : {}),
              ...(this.terms.term ? { term: this.terms.term } : {}),
              // A replica's vote (lib/replication/failover.ts): only while it probes.
              ...(vote !== undefined ? { source_reachable: vote } : {}),
            },
          }
        : {}),
    };
  }
}

const addressOf = (source: { host: string; port: number }) => `${source.host}:${source.port}`;

/** The answer of an order whose run ended without one (the agent stopped). */
const interrupted = (method: string, message: string): KeptAnswer => ({
  method,
  ok: false,
  error: { type: 'Interrupted', message },
});

/** The engine's texts cut to what the conductor accepts (a long GTID set must not drop the heartbeat). */
function boundedReport<T extends { position?: string; error?: string; source?: string }>(r: T): T {
  return {
    ...r,
    ...(r.position ? { position: r.position.slice(0, 4000) } : {}),
    ...(r.error ? { error: r.error.slice(0, 2000) } : {}),
    ...(r.source ? { source: r.source.slice(0, 300) } : {}),
  };
}

/** A promise and its resolve (Promise.withResolvers, which the compiler's ES2023 lib lacks). */
function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve = () => {};
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

function isMissingQueue(err: unknown): boolean {
  const name = (err as Error | undefined)?.name;
  return name === 'QueueDoesNotExist' || name === 'AWS.SimpleQueueService.NonExistentQueue';
}

function backupEngineOf(manager: string): BackupEngine {
  return manager === 'postgresql' ? 'postgresql' : manager === 'redis' ? 'redis' : 'mariadb';
}

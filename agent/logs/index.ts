import { z } from 'zod';
import { troveError } from '../engines/admin.ts';
import { GuestLog, type LogIdentity, type LogStore, type LogView, PublishedStates } from './guest-log.ts';
import type { GuestLogSpec } from './spec.ts';

// Trove's guest_log_list and guest_log_action (trove/guestagent/datastore/manager.py) over the
// engine's logs. The control plane says in each order where logs go (the project's prefix and,
// when the order may publish, a grant to upload below the instance's own part of it), Trove's
// guest_log_limit and guest_log_expiry, and which logs the caller may see (Trove's
// guest_log_exposed_logs; every log for an admin).

export { LOG_CONTAINER, type LogView } from './guest-log.ts';
export type { GuestLogSpec } from './spec.ts';

const flag = z
  .union([z.boolean(), z.number(), z.null()])
  .optional()
  .transform((v) => Boolean(v));

export const LogOrder = z.object({
  root: z.string().regex(/^database_logs\/[^/]+\/$/),
  limit_bytes: z.number().int().positive(),
  chunk_bytes: z.number().int().positive(),
  expiry_seconds: z.number().int().positive(),
  /** null: the caller is an admin and sees every log. */
  exposed: z.array(z.string()).nullable(),
});

export const LogActionOrder = LogOrder.extend({
  name: z.string(),
  enable: flag,
  disable: flag,
  publish: flag,
  discard: flag,
  /** The upload grant (an S3 POST policy) of an order that may publish: lib/logs/objects.ts. */
  upload: z.object({ url: z.url(), fields: z.record(z.string(), z.string()) }).optional(),
});

/** A log action's answer: the view, and what the control plane is to delete from the bucket. */
export type LogActionAnswer = LogView & { superseded?: { before: string; metafile: boolean } };

export class GuestLogs {
  private readonly logs: Map<string, GuestLog>;

  constructor(specs: GuestLogSpec[], id: LogIdentity, statePath: string) {
    const states = new PublishedStates(statePath);
    this.logs = new Map(specs.map((spec) => [spec.name, new GuestLog(spec, id, states.of(spec.name))]));
  }

  /** Trove's guest_log_list: the logs the caller may see, each as `show` has it. */
  async list(args: unknown): Promise<LogView[]> {
    const order = parse(LogOrder, args);
    const views: LogView[] = [];
    for (const log of this.logs.values()) {
      if (exposed(order.exposed, log.name)) views.push(await log.show());
    }
    return views;
  }

  /**
   * Trove's guest_log_action: enable or disable (USER logs only), then discard, then publish; the
   * answer is the log's view after all of it. Publishing turns the log on unless told to disable.
   */
  async action(args: unknown): Promise<LogActionAnswer> {
    const order = parse(LogActionOrder, args);
    const { name, disable, publish, discard } = order;
    let { enable } = order;
    if (enable && disable) throw troveError('BadRequest', `Cannot enable and disable log '${name}'.`);
    if (publish && !disable) enable = true;
    const log = this.logs.get(name);
    if (!log) throw troveError('LogNotFound', `Log '${name}' is not defined.`);
    if (!exposed(order.exposed, name)) {
      const action = publish ? 'publish' : discard ? 'discard' : 'show';
      throw troveError(
        'LogAccessForbidden',
        `User does not have admin privileges to ${action} the '${name}' log.`,
      );
    }
    if (log.spec.type === 'SYS' && !publish && (enable || disable)) {
      throw troveError('BadRequest', `Cannot ${enable ? 'enable' : 'disable'} a SYSTEM log ('${name}').`);
    }
    if (log.spec.type === 'USER' && (enable || disable)) {
      const on = await log.enabled();
      if (on !== Boolean(enable)) await log.spec.setEnabled?.(Boolean(enable));
    }
    let view = await log.show();
    let before: string | undefined;
    try {
      if (discard) {
        before = await log.discard();
        view = await log.show();
      }
      if (publish) {
        const published = await log.publish(this.store(order));
        view = published.view;
        before = published.superseded ?? before;
      }
    } catch (err) {
      if (isTroveError(err)) throw err;
      // Trove's answer when Swift fails: the store's own words stay in the agent's log.
      throw troveError('LogsNotAvailable', `Log storage is not available: ${(err as Error).name}.`);
    }
    // A discard without a publish leaves no metafile; a publish has just written a new one.
    return before ? { ...view, superseded: { before, metafile: !publish } } : view;
  }

  private store(order: z.infer<typeof LogActionOrder>): LogStore {
    const grant = order.upload;
    if (!grant)
      throw troveError(
        'LogsNotAvailable',
        'Log storage is not available: the order carries no upload grant.',
      );
    return {
      put: (key, body, contentType, metadata) => postObject(grant, key, body, contentType, metadata),
      root: order.root,
      limitBytes: order.limit_bytes,
      chunkBytes: Math.min(order.chunk_bytes, order.limit_bytes),
      expirySeconds: order.expiry_seconds,
    };
  }
}

/** An S3 POST Object upload through the grant: its fields, then ours, then the file, last. */
async function postObject(
  grant: { url: string; fields: Record<string, string> },
  key: string,
  body: Buffer,
  contentType: string,
  metadata: Record<string, string>,
): Promise<void> {
  const form = new FormData();
  for (const [name, value] of Object.entries(grant.fields)) form.append(name, value);
  form.set('key', key);
  form.append('Content-Type', contentType);
  for (const [name, value] of Object.entries(metadata)) form.append(`x-amz-meta-${name}`, value);
  form.append('file', new Blob([body], { type: contentType }));
  const answer = await fetch(grant.url, { method: 'POST', body: form });
  if (!answer.ok) {
    const text = (await answer.text()).slice(0, 300);
    const code = /<Code>([^<]+)<\/Code>/.exec(text)?.[1] ?? `HTTP ${answer.status}`;
    throw Object.assign(new Error(`upload refused: ${code}`), { name: code });
  }
}

function isTroveError(err: unknown): boolean {
  return err instanceof Error && ['BadRequest', 'LogNotFound', 'LogAccessForbidden'].includes(err.name);
}

function exposed(list: string[] | null, name: string): boolean {
  return list === null || list.includes(name);
}

function parse<T extends z.ZodType>(schema: T, args: unknown): z.infer<T> {
  const parsed = schema.safeParse(args);
  if (!parsed.success)
    throw troveError('BadRequest', `Malformed log order: ${parsed.error.issues[0]?.message}`);
  return parsed.data;
}

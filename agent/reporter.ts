import { SendMessageBatchCommand, SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { GuestReport } from '../lib/guest/protocol.ts';
import { nowSeconds, seal } from '../lib/guest/signing.ts';

export type HeartbeatPayload = Extract<GuestReport, { method: 'heartbeat' }>['payload'];

/** Sends signed reports to the conductor queue, the only place a guest may write to. */
export class Reporter {
  constructor(
    private readonly sqs: SQSClient,
    private readonly conductorUrl: string,
    private readonly key: Buffer,
    private readonly instanceId: string,
  ) {}

  async heartbeat(payload: HeartbeatPayload): Promise<void> {
    await this.send({ method: 'heartbeat', instance_id: this.instanceId, sent: nowSeconds(), payload });
  }

  /**
   * An order's answer; `heartbeat`: a heartbeat that goes with it, in one request, so that the
   * conductor takes both in one batch (prepare's answer and the "healthy" heartbeat a create
   * waits for: one trip through the conductor instead of two after each other).
   */
  async result(
    payload: Extract<GuestReport, { method: 'operation_result' }>['payload'],
    heartbeat?: HeartbeatPayload,
  ): Promise<void> {
    const sent = nowSeconds();
    const answer: GuestReport = { method: 'operation_result', instance_id: this.instanceId, sent, payload };
    if (!heartbeat) return this.send(answer);
    await this.send({ method: 'heartbeat', instance_id: this.instanceId, sent, payload: heartbeat }, answer);
  }

  /** One report in a SendMessage, several in one SendMessageBatch (in order, at most 10). */
  private async send(...reports: GuestReport[]): Promise<void> {
    const body = (report: GuestReport) => seal(this.key, this.instanceId, report);
    const [only] = reports;
    if (reports.length === 1 && only) {
      await this.sqs.send(new SendMessageCommand({ QueueUrl: this.conductorUrl, MessageBody: body(only) }));
      return;
    }
    const out = await this.sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: this.conductorUrl,
        Entries: reports.map((report, n) => ({ Id: String(n), MessageBody: body(report) })),
      }),
    );
    const failed = out.Failed ?? [];
    if (failed.length)
      throw new Error(`reports not sent: ${failed.map((f) => `${f.Code} ${f.Message ?? ''}`).join('; ')}`);
  }
}

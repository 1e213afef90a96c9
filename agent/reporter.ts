import { SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { GuestReport } from '../lib/guest/protocol.ts';
import { nowSeconds, seal } from '../lib/guest/signing.ts';

/** Sends signed reports to the conductor queue, the only place a guest may write to. */
export class Reporter {
  constructor(
    private readonly sqs: SQSClient,
    private readonly conductorUrl: string,
    private readonly key: Buffer,
    private readonly instanceId: string,
  ) {}

  async heartbeat(payload: Extract<GuestReport, { method: 'heartbeat' }>['payload']): Promise<void> {
    await this.send({ method: 'heartbeat', instance_id: this.instanceId, sent: nowSeconds(), payload });
  }

  async result(payload: Extract<GuestReport, { method: 'operation_result' }>['payload']): Promise<void> {
    await this.send({
      method: 'operation_result',
      instance_id: this.instanceId,
      sent: nowSeconds(),
      payload,
    });
  }

  private async send(report: GuestReport): Promise<void> {
    await this.sqs.send(
      new SendMessageCommand({
        QueueUrl: this.conductorUrl,
        MessageBody: seal(this.key, this.instanceId, report),
      }),
    );
  }
}

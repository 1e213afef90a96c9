import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createDurableSqs } from './sqs-durable.ts';

/**
 * The embedded SQS-compatible server (local-aws-sqs), in this process, with its queues and
 * messages journaled under `dataDir` so that they outlive a restart of the local cloud.
 */
export async function startSqs(opts: {
  port: number;
  dataDir: string;
  /** Journal size at which it is compacted. */
  compactBytes?: number;
  log?: (line: string) => void;
  /** Queues whose every new message is enqueued twice (at-least-once delivery, on purpose). */
  duplicate?: (queueName: string) => boolean;
}): Promise<{ endpoint: string; restored: { queues: number; messages: number }; close(): Promise<void> }> {
  const sqs = createDurableSqs({
    port: opts.port,
    hostname: '127.0.0.1',
    // Tests delete and recreate queues; AWS's 60 s wait after a delete would only slow them.
    emulateQueueCreationLifecycle: false,
    dataDir: opts.dataDir,
    compactBytes: opts.compactBytes,
    log: opts.log,
    duplicate: opts.duplicate,
  });
  const server = createServer((req, res) => {
    void sqs.requestHandler(req, res);
  });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(opts.port, '127.0.0.1', () => resolve());
    });
  } catch (err) {
    sqs.close();
    throw err;
  }
  // Queue URLs carry the port: with port 0 it is known only now.
  const { port } = server.address() as AddressInfo;
  sqs.service.PORT = port;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    restored: sqs.restored,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections?.();
        server.close(() => {
          sqs.close();
          resolve();
        });
      }),
  };
}

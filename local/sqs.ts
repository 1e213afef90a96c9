import { createSqsServer } from 'local-aws-sqs';

/**
 * The embedded SQS-compatible server (local-aws-sqs), in this process: it keeps queues in memory,
 * so the provisioner recreates them from serverless.yml at every start.
 */
export async function startSqs(opts: {
  port: number;
}): Promise<{ endpoint: string; close(): Promise<void> }> {
  const server = await createSqsServer({
    port: opts.port,
    hostname: '127.0.0.1',
    // Tests delete and recreate queues; AWS's 60 s wait after a delete would only slow them.
    emulateQueueCreationLifecycle: false,
  });
  return {
    endpoint: `http://127.0.0.1:${opts.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections?.();
        server.close(() => resolve());
      }),
  };
}

import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { CloudFormationCustomResourceEvent } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { answerCustomResource, isCustomResourceEvent } from '../../lib/catalog/custom-resource.ts';

// A real HTTP server stands in for the presigned S3 URL CloudFormation waits on.
const received: Array<{ method?: string; headers: IncomingHttpHeaders; body: Record<string, unknown> }> = [];
const server = createServer((req, res) => {
  let text = '';
  req.on('data', (chunk) => {
    text += chunk;
  });
  req.on('end', () => {
    received.push({ method: req.method, headers: req.headers, body: JSON.parse(text) });
    res.end();
  });
});
let url = '';
beforeAll(async () => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/response?X-Amz-Signature=x`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

const event = (RequestType: 'Create' | 'Update' | 'Delete'): CloudFormationCustomResourceEvent =>
  ({
    RequestType,
    ServiceToken: 'arn:aws:lambda:us-east-1:1:function:f',
    ResponseURL: url,
    StackId: 'stack',
    RequestId: `req-${RequestType}`,
    LogicalResourceId: 'CatalogSeed',
    ResourceType: 'Custom::CatalogSeed',
    ResourceProperties: { ServiceToken: 'x' },
    ...(RequestType === 'Create' ? {} : { PhysicalResourceId: 'seed' }),
  }) as CloudFormationCustomResourceEvent;
const context = { logStreamName: 'stream' };

describe('custom resource answers', () => {
  it('tell CloudFormation events from direct invocations', () => {
    expect(isCustomResourceEvent(event('Create'))).toBe(true);
    expect(isCustomResourceEvent({})).toBe(false);
    expect(isCustomResourceEvent(null)).toBe(false);
  });

  it('run the work on Create and PUT SUCCESS with its data and no content type', async () => {
    received.length = 0;
    await answerCustomResource(event('Create'), context, 'seed', async () => ({ flavors: 7 }));
    expect(received).toHaveLength(1);
    expect(received[0]?.method).toBe('PUT');
    expect(received[0]?.headers['content-type'] ?? '').toBe('');
    expect(received[0]?.body).toEqual({
      Status: 'SUCCESS',
      PhysicalResourceId: 'seed',
      StackId: 'stack',
      RequestId: 'req-Create',
      LogicalResourceId: 'CatalogSeed',
      Data: { flavors: 7 },
    });
  });

  it('skip the work on Delete and still answer SUCCESS', async () => {
    received.length = 0;
    let ran = false;
    await answerCustomResource(event('Delete'), context, 'seed', async () => {
      ran = true;
      return {};
    });
    expect(ran).toBe(false);
    expect(received[0]?.body).toMatchObject({ Status: 'SUCCESS', RequestId: 'req-Delete' });
  });

  it('answer FAILED with the reason when the work fails, rather than leave the stack waiting', async () => {
    received.length = 0;
    await answerCustomResource(event('Update'), context, 'seed', async () => {
      throw new Error('table missing');
    });
    expect(received[0]?.body).toMatchObject({
      Status: 'FAILED',
      Reason: expect.stringContaining('table missing'),
    });
  });
});

import { describe, expect, it } from 'vitest';
import { intrinsicResolver } from '../../local/intrinsics.ts';
import { createTableInput, referencedLogicalId } from '../../local/provision.ts';
import type { ResolvedService } from '../../local/service.ts';

describe('local provisioning from the resolved template', () => {
  it('reads the logical id behind GetAtt and Ref', () => {
    expect(referencedLogicalId({ 'Fn::GetAtt': ['Dlq', 'Arn'] })).toBe('Dlq');
    expect(referencedLogicalId({ 'Fn::GetAtt': 'Dlq.Arn' })).toBe('Dlq');
    expect(referencedLogicalId({ Ref: 'Table' })).toBe('Table');
    expect(referencedLogicalId('arn:aws:sqs:x')).toBeUndefined();
  });

  it('turns table properties into CreateTable input without what DynamoDB Local cannot take', () => {
    const input = createTableInput({
      TableName: 't',
      BillingMode: 'PAY_PER_REQUEST',
      AttributeDefinitions: [{ AttributeName: 'id', AttributeType: 'S' }],
      KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }],
      SSESpecification: { SSEEnabled: true },
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
    });
    expect(input).toEqual({
      TableName: 't',
      BillingMode: 'PAY_PER_REQUEST',
      AttributeDefinitions: [{ AttributeName: 'id', AttributeType: 'S' }],
      KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }],
    });
  });

  it('resolves state-machine references to local function ARNs and queue URLs', () => {
    const service: ResolvedService = {
      service: 's',
      provider: { stage: 'local', region: 'us-east-1' },
      functions: { doThing: { name: 's-local-doThing', handler: 'h' } },
    };
    const queues = new Map([
      ['Q', { logicalId: 'Q', name: 'q', url: 'http://sqs/q', arn: 'arn:aws:sqs:us-east-1:1:q' }],
    ]);
    const resolve = intrinsicResolver(service, queues, 'us-east-1');
    expect(
      resolve({
        A: { Resource: { 'Fn::GetAtt': ['doThing', 'Arn'] } },
        B: {
          Resource: { 'Fn::GetAtt': ['DoThingLambdaFunction', 'Arn'] },
          Parameters: { QueueUrl: { Ref: 'Q' } },
        },
      }),
    ).toEqual({
      A: { Resource: 'arn:aws:lambda:us-east-1:123456789012:function:s-local-doThing' },
      B: {
        Resource: 'arn:aws:lambda:us-east-1:123456789012:function:s-local-doThing',
        Parameters: { QueueUrl: 'http://sqs/q' },
      },
    });
  });
});

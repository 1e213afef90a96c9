import {
  CreateTableCommand,
  type CreateTableCommandInput,
  type DynamoDBClient,
  ResourceInUseException,
  UpdateTimeToLiveCommand,
} from '@aws-sdk/client-dynamodb';
import { CreateBucketCommand, type S3Client } from '@aws-sdk/client-s3';
import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  QueueNameExists,
  SetQueueAttributesCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { type CfnResource, type ResolvedService, resourcesOfType } from './service.ts';

export interface QueueInfo {
  logicalId: string;
  name: string;
  url: string;
  arn: string;
}

/** `{ 'Fn::GetAtt': [LogicalId, 'Arn'] }` or `{ Ref: LogicalId }` → the logical id it points at. */
export function referencedLogicalId(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const getAtt = (value as Record<string, unknown>)['Fn::GetAtt'];
  if (Array.isArray(getAtt) && typeof getAtt[0] === 'string') return getAtt[0];
  if (typeof getAtt === 'string') return getAtt.split('.')[0];
  const ref = (value as Record<string, unknown>).Ref;
  return typeof ref === 'string' ? ref : undefined;
}

/** CloudFormation's table properties minus what DynamoDB Local has no API for (SSE, PITR, tags). */
export function createTableInput(props: Record<string, unknown>): CreateTableCommandInput {
  const { TableName, AttributeDefinitions, KeySchema, GlobalSecondaryIndexes, LocalSecondaryIndexes } = props;
  const input: Record<string, unknown> = {
    TableName,
    AttributeDefinitions,
    KeySchema,
    BillingMode: 'PAY_PER_REQUEST',
  };
  if (GlobalSecondaryIndexes) input.GlobalSecondaryIndexes = GlobalSecondaryIndexes;
  if (LocalSecondaryIndexes) input.LocalSecondaryIndexes = LocalSecondaryIndexes;
  if (props.StreamSpecification)
    input.StreamSpecification = { StreamEnabled: true, ...(props.StreamSpecification as object) };
  return input as unknown as CreateTableCommandInput;
}

export async function createTables(ddb: DynamoDBClient, service: ResolvedService): Promise<string[]> {
  const names: string[] = [];
  for (const [, table] of resourcesOfType(service, 'AWS::DynamoDB::Table')) {
    const props = table.Properties ?? {};
    const input = createTableInput(props);
    try {
      await ddb.send(new CreateTableCommand(input));
    } catch (err) {
      // Tables persist across restarts under .local/; an existing one is kept as it is.
      if (!(err instanceof ResourceInUseException)) throw err;
    }
    const ttl = props.TimeToLiveSpecification as { AttributeName: string; Enabled: boolean } | undefined;
    if (ttl?.Enabled) {
      await ddb
        .send(new UpdateTimeToLiveCommand({ TableName: input.TableName, TimeToLiveSpecification: ttl }))
        .catch((err: Error) => {
          if (!/already enabled/i.test(err.message)) throw err;
        });
    }
    names.push(String(input.TableName));
  }
  return names;
}

const QUEUE_ATTRIBUTES = [
  'DelaySeconds',
  'MaximumMessageSize',
  'MessageRetentionPeriod',
  'ReceiveMessageWaitTimeSeconds',
  'VisibilityTimeout',
  'FifoQueue',
  'ContentBasedDeduplication',
] as const;

/** Creates queues in dependency order (dead-letter queues before the queues that redrive to them). */
export async function createQueues(
  sqs: SQSClient,
  service: ResolvedService,
): Promise<Map<string, QueueInfo>> {
  const pending = new Map(resourcesOfType(service, 'AWS::SQS::Queue'));
  const created = new Map<string, QueueInfo>();
  while (pending.size > 0) {
    const ready = [...pending].filter(([, q]) => {
      const dlq = referencedLogicalId(redrive(q)?.deadLetterTargetArn);
      return !dlq || created.has(dlq);
    });
    if (ready.length === 0)
      throw new Error(`Queues with unresolvable dead-letter targets: ${[...pending.keys()]}`);
    for (const [logicalId, q] of ready) {
      created.set(logicalId, await createQueue(sqs, logicalId, q, created));
      pending.delete(logicalId);
    }
  }
  return created;
}

function redrive(q: CfnResource): { deadLetterTargetArn?: unknown; maxReceiveCount?: unknown } | undefined {
  return q.Properties?.RedrivePolicy as
    | { deadLetterTargetArn?: unknown; maxReceiveCount?: unknown }
    | undefined;
}

async function createQueue(sqs: SQSClient, logicalId: string, q: CfnResource, known: Map<string, QueueInfo>) {
  const props = q.Properties ?? {};
  const name = String(props.QueueName ?? logicalId);
  const attributes: Record<string, string> = {};
  for (const key of QUEUE_ATTRIBUTES) if (props[key] !== undefined) attributes[key] = String(props[key]);
  const policy = redrive(q);
  if (policy) {
    const target = known.get(referencedLogicalId(policy.deadLetterTargetArn) ?? '');
    attributes.RedrivePolicy = JSON.stringify({
      deadLetterTargetArn: target?.arn ?? policy.deadLetterTargetArn,
      maxReceiveCount: String(policy.maxReceiveCount),
    });
  }
  const QueueUrl = await createOrUpdate(sqs, name, attributes);
  const attrs = await sqs.send(new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ['QueueArn'] }));
  return { logicalId, name, url: QueueUrl ?? '', arn: attrs.Attributes?.QueueArn ?? '' };
}

/**
 * Queues outlive a restart of the local cloud, so serverless.yml may have changed since one was
 * created: its attributes are then updated, as a CloudFormation update would.
 */
async function createOrUpdate(sqs: SQSClient, name: string, attributes: Record<string, string>) {
  try {
    return (await sqs.send(new CreateQueueCommand({ QueueName: name, Attributes: attributes }))).QueueUrl;
  } catch (err) {
    if (!(err instanceof QueueNameExists)) throw err;
    const { QueueUrl } = await sqs.send(new GetQueueUrlCommand({ QueueName: name }));
    const { FifoQueue: _fixedAtCreation, ...changeable } = attributes;
    await sqs.send(new SetQueueAttributesCommand({ QueueUrl, Attributes: changeable }));
    return QueueUrl;
  }
}

export async function createBuckets(s3: S3Client, service: ResolvedService): Promise<string[]> {
  const names: string[] = [];
  for (const [logicalId, bucket] of resourcesOfType(service, 'AWS::S3::Bucket')) {
    const name = String(bucket.Properties?.BucketName ?? logicalId.toLowerCase());
    await s3.send(new CreateBucketCommand({ Bucket: name })).catch((err: Error) => {
      if (!/BucketAlready(OwnedByYou|Exists)/.test(err.name)) throw err;
    });
    names.push(name);
  }
  return names;
}

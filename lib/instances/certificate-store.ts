import type { TransactWriteCommandInput } from '@aws-sdk/lib-dynamodb';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { config } from '../config.ts';
import { documents } from '../dynamo.ts';
import type { InstanceItem } from './model.ts';
import type { InstanceSsl } from './ssl.ts';

// Where an instance's certificate and its CA are kept: an item of their own in the operations
// table, `ssl#<instance>`, not in the instance item. Every heartbeat writes the instance item and
// DynamoDB bills a write by the whole item's size in 1 KB units: with the two PEMs (~1.4 KB) the
// item was ~2.3 KB, 3 write units a heartbeat; without them it fits one (issue 16, docs/cost.md).
// The certificate is read only by GET /instances/{id}/ssl. It is written in one transaction with
// the instance's `ssl_serial` and removed in one with the instance item, so neither outlives the
// other. IAM: only items whose key starts `ssl#` (serverless.yml, iam.readCertificates).

type TransactItem = NonNullable<TransactWriteCommandInput['TransactItems']>[number];

const keyOf = (instanceId: string) => ({ id: `ssl#${instanceId}` });

/** The certificate of `item`; an item written before certificates had their own keeps it inline. */
export async function loadCertificate(item: InstanceItem): Promise<InstanceSsl | undefined> {
  if (item.ssl) return item.ssl;
  if (!item.ssl_serial) return undefined;
  const out = await documents.send(
    new GetCommand({ TableName: config.operationsTable, Key: keyOf(item.id) }),
  );
  return out.Item?.ssl as InstanceSsl | undefined;
}

/** The serial of the certificate issued to `item`, if one was (kept inline on older items). */
export function certificateSerial(item: InstanceItem | undefined): string | undefined {
  return item?.ssl_serial ?? item?.ssl?.serial;
}

/** The certificate's item, written once. */
export function putCertificate(item: InstanceItem, ssl: InstanceSsl): TransactItem {
  return {
    Put: {
      TableName: config.operationsTable,
      Item: { ...keyOf(item.id), project_id: item.project_id, instance_id: item.id, ssl },
      ConditionExpression: 'attribute_not_exists(id)',
    },
  };
}

/** The certificate's item goes with its instance (nothing when it has none). */
export function deleteCertificate(instanceId: string): TransactItem {
  return { Delete: { TableName: config.operationsTable, Key: keyOf(instanceId) } };
}

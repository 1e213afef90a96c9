import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';

// The document client for conditional updates and transactions across tables (instance and
// quota items change together); dynamoose models serve the plain catalog reads.
export const documents = DynamoDBDocumentClient.from(new DynamoDBClient({}), {
  marshallOptions: { removeUndefinedValues: true },
});

/** Trove's timestamps: ISO 8601 without zone or fraction, in UTC. */
export function troveTime(d: Date = new Date()): string {
  return d.toISOString().slice(0, 19);
}

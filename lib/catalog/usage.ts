import { ScanCommand, type ScanCommandOutput } from '@aws-sdk/lib-dynamodb';
import { config } from '../config.ts';
import { documents } from '../dynamo.ts';

// Which items still name a datastore version (Trove's checks before it deletes one: instances,
// then backups, then configuration groups, each not deleted). No table has an index by version:
// deleting a version is a rare admin act, so it pays for a scan rather than every create paying
// for an index. Items being deleted still count, as Trove counts them until they are gone.

export type VersionUser = 'instance' | 'backup' | 'configuration';

const TABLES: Array<[VersionUser, () => string]> = [
  ['instance', () => config.instancesTable],
  ['backup', () => config.backupsTable],
  ['configuration', () => config.configurationsTable],
];

async function named(table: string, versionId: string): Promise<boolean> {
  let start: Record<string, unknown> | undefined;
  do {
    const page: ScanCommandOutput = await documents.send(
      new ScanCommand({
        TableName: table,
        FilterExpression: '#d.version_id = :v',
        ExpressionAttributeNames: { '#d': 'datastore' },
        ExpressionAttributeValues: { ':v': versionId },
        ProjectionExpression: 'id',
        ExclusiveStartKey: start,
      }),
    );
    if (page.Items?.length) return true;
    start = page.LastEvaluatedKey;
  } while (start);
  return false;
}

/** The first kind of item (in Trove's order) that still uses the version, if any. */
export async function versionUsedBy(versionId: string): Promise<VersionUser | undefined> {
  for (const [user, table] of TABLES) if (await named(table(), versionId)) return user;
  return undefined;
}

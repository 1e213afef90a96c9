import type { BackupItem } from './model.ts';
import type { BackupView } from './schemas.ts';

/** Trove's BackupView: the same for create, show and lists. Size is in GB, null until known. */
export function backupView(item: BackupItem): BackupView {
  return {
    id: item.id,
    name: item.name,
    description: item.description ?? null,
    locationRef: item.status === 'COMPLETED' ? `s3://${item.bucket}/${item.key}` : null,
    instance_id: item.instance_id,
    created: item.created,
    updated: item.updated,
    size: item.size_bytes === undefined ? null : Math.round((item.size_bytes / 1024 ** 3) * 1000) / 1000,
    status: item.status,
    parent_id: item.parent_id ?? null,
    project_id: item.project_id,
    datastore: {
      type: item.datastore.type,
      version: item.datastore.version,
      version_id: item.datastore.version_id,
    },
  };
}

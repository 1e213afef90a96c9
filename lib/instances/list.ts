import type { Page } from '../http/pagination.ts';
import { type InstanceItem, InstanceModel } from './model.ts';

export interface InstancePage {
  items: InstanceItem[];
  /** The id of the last item when more may follow. */
  nextMarker?: string;
}

/** A project's instances in id order, one page at a time: DynamoDB reads only the page. */
export async function listInstances(projectId: string, page: Page): Promise<InstancePage> {
  let query = InstanceModel.query('project_id').eq(projectId).limit(page.limit);
  if (page.marker) query = query.startAt({ project_id: projectId, id: page.marker });
  const result = await query.exec();
  const items = result.map((doc) => doc.toJSON() as InstanceItem);
  const last = result.lastKey as { id?: string } | undefined;
  return { items, nextMarker: last?.id };
}

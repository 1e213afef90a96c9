import { projectHandler } from '#lib/http/handler';
import { nextLinks, pageOf } from '#lib/http/pagination';
import { baseUrl, json } from '#lib/http/response';
import { listInstances } from '#lib/instances/list';
import { instanceSummary } from '#lib/instances/views';

/** `GET /v1.0/{project_id}/instances`: the project's instances, paginated as Trove does. */
export const list = projectHandler(async (event, caller) => {
  const page = pageOf(event);
  const result = await listInstances(caller.projectId, page);
  const base = baseUrl(event);
  const body: Record<string, unknown> = {
    instances: result.items.map((item) => instanceSummary(item, base)),
  };
  if (result.nextMarker) {
    body.links = nextLinks(base, event, event.queryStringParameters?.limit, result.nextMarker);
  }
  return json(200, body);
});

import { parsedBody } from '#lib/http/body';
import { type ProjectRoute, projectHandler } from '#lib/http/handler';
import { pageOf, pageResponse } from '#lib/http/pagination';
import { baseUrl, type HttpEvent, json } from '#lib/http/response';
import { byRouteKey } from '#lib/http/routing';
import { instanceSummary } from '#lib/instances/views';
import { countApplications } from '#lib/modules/applications';
import { moduleInstances } from '#lib/modules/applications-view';
import { applyModules, listInstanceModules, removeModule } from '#lib/modules/instances';
import { reapplyModule } from '#lib/modules/reapply';
import {
  ApplyModulesRequest,
  CreateModuleRequest,
  ReapplyModuleRequest,
  UpdateModuleRequest,
} from '#lib/modules/schemas';
import { createModule, deleteModule, listModules, loadModule, updateModule } from '#lib/modules/service';
import { detailedModuleView, moduleView } from '#lib/modules/views';
import { pageByKey } from '#lib/paging';
import { validate } from '#lib/validation';

// Trove's modules (TROVE_API.md §8.4): the module CRUD, which instances have one, and the
// per-instance routes, which are guest calls.

const moduleId = (event: HttpEvent) => event.pathParameters?.module_id ?? '';
const instanceId = (event: HttpEvent) => event.pathParameters?.instance_id ?? '';
const query = (event: HttpEvent, name: string) => event.queryStringParameters?.[name] ?? '';

const list: ProjectRoute = async (event, caller) => {
  const modules = await listModules(caller, query(event, 'datastore') || undefined);
  return json(200, { modules: modules.map(moduleView) });
};

const create: ProjectRoute = async (event, caller) => {
  const { module } = validate(CreateModuleRequest, parsedBody(event));
  return json(200, { module: detailedModuleView(await createModule(caller, module)) });
};

const show: ProjectRoute = async (event, caller) => {
  const item = await loadModule(caller, moduleId(event));
  return json(200, { module: detailedModuleView(item, await countApplications(item.id, item.md5)) });
};

const update: ProjectRoute = async (event, caller) => {
  const { module } = validate(UpdateModuleRequest, parsedBody(event));
  return json(200, { module: detailedModuleView(await updateModule(caller, moduleId(event), module)) });
};

/** Trove answers a module delete 200 with no body. */
const remove: ProjectRoute = async (event, caller) => {
  await deleteModule(caller, moduleId(event));
  return { statusCode: 200, body: '' };
};

/** The caller's instances that have the module, or with `count_only=true` a count per md5. */
const instances: ProjectRoute = async (event, caller) => {
  const found = await moduleInstances(
    caller,
    moduleId(event),
    query(event, 'count_only').toLowerCase() === 'true',
  );
  if (found.kind === 'count') return json(200, { instances: found.rows });
  const page = pageByKey(found.instances, (i) => i.id, pageOf(event));
  const ctx = { base: baseUrl(event), isAdmin: caller.isAdmin };
  return pageResponse(event, 'instances', { ...page, items: page.items.map((i) => instanceSummary(i, ctx)) });
};

/** Trove's reapply answers 202 with no body once its taskmanager has the work. */
const reapply: ProjectRoute = async (event, caller) => {
  const { reapply: req } = validate(ReapplyModuleRequest, parsedBody(event));
  await reapplyModule(caller, moduleId(event), req);
  return { statusCode: 202, body: '' };
};

/** Trove reads `from_guest` and `include_contents` as true when they are any non-empty text. */
const instanceModules: ProjectRoute = async (event, caller) => {
  const modules = await listInstanceModules(
    caller,
    instanceId(event),
    Boolean(query(event, 'include_contents')),
  );
  return json(200, { modules });
};

const apply: ProjectRoute = async (event, caller) => {
  const { modules } = validate(ApplyModulesRequest, parsedBody(event));
  const results = await applyModules(
    caller,
    instanceId(event),
    modules.map((m) => m.id),
  );
  return json(200, { modules: results });
};

const removeFromInstance: ProjectRoute = async (event, caller) => {
  await removeModule(caller, instanceId(event), moduleId(event));
  return { statusCode: 200, body: '' };
};

const m = '/v1.0/{project_id}/modules';
const im = '/v1.0/{project_id}/instances/{instance_id}/modules';
export const handler = projectHandler(
  byRouteKey({
    [`GET ${m}`]: list,
    [`POST ${m}`]: create,
    [`GET ${m}/{module_id}`]: show,
    [`PUT ${m}/{module_id}`]: update,
    [`DELETE ${m}/{module_id}`]: remove,
    [`GET ${m}/{module_id}/instances`]: instances,
    [`PUT ${m}/{module_id}/instances`]: reapply,
    [`GET ${im}`]: instanceModules,
    [`POST ${im}`]: apply,
    [`DELETE ${im}/{module_id}`]: removeFromInstance,
  }),
);

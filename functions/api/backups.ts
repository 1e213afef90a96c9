import { createStrategy, instanceBackups, listBackups, strategyScope } from '#lib/backups/listing';
import { getPolicy, removePolicy, setPolicy } from '#lib/backups/policy';
import { getBackup } from '#lib/backups/repository';
import { BackupStrategyRequest, CreateBackupRequest } from '#lib/backups/schemas';
import { createBackup, removeBackup } from '#lib/backups/service';
import { deleteStrategy, listStrategies } from '#lib/backups/strategies';
import { backupView } from '#lib/backups/views';
import { parsedBody } from '#lib/http/body';
import { type ProjectRoute, projectHandler } from '#lib/http/handler';
import { pageOf, pageResponse } from '#lib/http/pagination';
import type { HttpEvent } from '#lib/http/response';
import { accepted, json } from '#lib/http/response';
import { byRouteKey } from '#lib/http/routing';
import { validate } from '#lib/validation';

// Trove's backups and backup strategies (TROVE_API.md §7), and Troveless's per-instance backup
// policy (schedule and retention), an extension Trove leaves to cron.

const query = (event: HttpEvent) => event.queryStringParameters ?? {};
const instanceId = (event: HttpEvent) => event.pathParameters?.instance_id ?? '';
const views = (page: Awaited<ReturnType<typeof listBackups>>) => ({
  ...page,
  items: page.items.map(backupView),
});

const list: ProjectRoute = async (event, caller) => {
  const page = await listBackups(caller, query(event), pageOf(event));
  return pageResponse(event, 'backups', views(page));
};

const create: ProjectRoute = async (event, caller) => {
  const { backup } = validate(CreateBackupRequest, parsedBody(event));
  return json(202, { backup: backupView(await createBackup(caller.projectId, backup)) });
};

const show: ProjectRoute = async (event, caller) =>
  json(200, { backup: backupView(await getBackup(caller.projectId, event.pathParameters?.backup_id ?? '')) });

const remove: ProjectRoute = async (event, caller) => {
  await removeBackup(caller.projectId, event.pathParameters?.backup_id ?? '');
  return accepted();
};

const ofInstance: ProjectRoute = async (event, caller) => {
  const page = await instanceBackups(caller.projectId, instanceId(event), pageOf(event));
  return pageResponse(event, 'backups', views(page));
};

const strategyCreate: ProjectRoute = async (event, caller) => {
  const { backup_strategy } = validate(BackupStrategyRequest, parsedBody(event));
  return json(202, { backup_strategy: await createStrategy(caller.projectId, backup_strategy) });
};

const strategyList: ProjectRoute = async (event, caller) => {
  const { project, instance } = strategyScope(caller, query(event));
  return json(200, { backup_strategies: await listStrategies(project, instance) });
};

const strategyDelete: ProjectRoute = async (event, caller) => {
  const { project, instance } = strategyScope(caller, query(event));
  await deleteStrategy(project, instance ?? '');
  return accepted();
};

/** `PUT /instances/{id}/backup_policy`: schedule, full/incremental pattern and retention. */
const policyPut: ProjectRoute = async (event, caller) => {
  const policy = await setPolicy(caller.projectId, instanceId(event), parsedBody(event));
  return json(200, { backup_policy: policy });
};

const policyGet: ProjectRoute = async (event, caller) =>
  json(200, await getPolicy(caller.projectId, instanceId(event)));

const policyDelete: ProjectRoute = async (event, caller) => {
  await removePolicy(caller.projectId, instanceId(event));
  return accepted();
};

const b = '/v1.0/{project_id}/backups';
const i = '/v1.0/{project_id}/instances/{instance_id}';
const s = '/v1.0/{project_id}/backup_strategies';
export const handler = projectHandler(
  byRouteKey({
    [`GET ${b}`]: list,
    [`POST ${b}`]: create,
    [`GET ${b}/{backup_id}`]: show,
    [`DELETE ${b}/{backup_id}`]: remove,
    [`GET ${i}/backups`]: ofInstance,
    [`POST ${s}`]: strategyCreate,
    [`GET ${s}`]: strategyList,
    [`DELETE ${s}`]: strategyDelete,
    [`PUT ${i}/backup_policy`]: policyPut,
    [`GET ${i}/backup_policy`]: policyGet,
    [`DELETE ${i}/backup_policy`]: policyDelete,
  }),
);

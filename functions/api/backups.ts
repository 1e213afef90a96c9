import type { BackupItem } from '#lib/backups/model';
import { parsePolicy } from '#lib/backups/policy';
import { getBackup, projectBackups } from '#lib/backups/repository';
import { BackupStrategyRequest, CreateBackupRequest } from '#lib/backups/schemas';
import { createBackup, deleteBackup } from '#lib/backups/service';
import { deleteStrategy, listStrategies, putStrategy } from '#lib/backups/strategies';
import { backupView } from '#lib/backups/views';
import { byRouteKey } from '#lib/catalog/routing';
import { BadRequest, Forbidden, NotFound, NotImplemented } from '#lib/errors';
import { parsedBody } from '#lib/http/body';
import { type ProjectRoute, projectHandler } from '#lib/http/handler';
import { nextLinks, pageOf } from '#lib/http/pagination';
import type { HttpEvent } from '#lib/http/response';
import { accepted, baseUrl, json } from '#lib/http/response';
import { validate } from '#lib/http/validation';
import { loadInstance } from '#lib/instances/operations';
import { updateInstance } from '#lib/instances/repository';

// Trove's backups and backup strategies (TROVE_API.md §7), and Troveless's per-instance backup
// policy (schedule and retention), an extension Trove leaves to cron.

function page(event: HttpEvent, items: BackupItem[]) {
  const p = pageOf(event);
  const sorted = [...items].sort((a, b) =>
    a.created === b.created ? (a.id < b.id ? -1 : 1) : a.created < b.created ? 1 : -1,
  );
  const start = p.marker ? sorted.findIndex((b) => b.id === p.marker) + 1 : 0;
  const slice = p.marker && start === 0 ? [] : sorted.slice(start, start + p.limit);
  const body: Record<string, unknown> = { backups: slice.map(backupView) };
  const last = slice[slice.length - 1];
  if (last && start + p.limit < sorted.length) {
    body.links = nextLinks(baseUrl(event), event, event.queryStringParameters?.limit, last.id);
  }
  return json(200, body);
}

const list: ProjectRoute = async (event, caller) => {
  const q = event.queryStringParameters ?? {};
  if ((q.all_projects || q.project_id) && !caller.isAdmin)
    throw new Forbidden('Only admins may list other projects’ backups.');
  let items = await projectBackups(q.project_id ?? caller.projectId);
  if (q.instance_id) items = items.filter((b) => b.instance_id === q.instance_id);
  if (q.datastore)
    items = items.filter((b) => b.datastore.type === q.datastore || b.datastore.version_id === q.datastore);
  return page(event, items);
};

const create: ProjectRoute = async (event, caller) => {
  const { backup } = validate(CreateBackupRequest, parsedBody(event));
  if (backup.storage_driver === 'cinder')
    throw new NotImplemented('Only object-storage backups are supported.');
  const item = await createBackup(caller.projectId, backup);
  return json(202, { backup: backupView(item) });
};

const show: ProjectRoute = async (event, caller) =>
  json(200, { backup: backupView(await getBackup(caller.projectId, event.pathParameters?.backup_id ?? '')) });

const remove: ProjectRoute = async (event, caller) => {
  const id = event.pathParameters?.backup_id ?? '';
  await getBackup(caller.projectId, id);
  await deleteBackup(caller.projectId, id);
  return accepted();
};

const instanceBackups: ProjectRoute = async (event, caller) => {
  const instance = await loadInstance(caller.projectId, event.pathParameters?.instance_id ?? '');
  return page(
    event,
    (await projectBackups(caller.projectId)).filter((b) => b.instance_id === instance.id),
  );
};

const strategyCreate: ProjectRoute = async (event, caller) => {
  const { backup_strategy: s } = validate(BackupStrategyRequest, parsedBody(event));
  if (s.instance_id) await loadInstance(caller.projectId, s.instance_id);
  const strategy = {
    project_id: caller.projectId,
    instance_id: s.instance_id ?? '',
    backend: 'swift' as const,
    swift_container: s.swift_container,
  };
  await putStrategy(strategy);
  return json(202, { backup_strategy: strategy });
};

function strategyScope(event: HttpEvent, caller: { projectId: string; isAdmin: boolean }) {
  const q = event.queryStringParameters ?? {};
  if (q.project_id && q.project_id !== caller.projectId && !caller.isAdmin) {
    throw new Forbidden('Only admins may manage other projects’ backup strategies.');
  }
  return { project: q.project_id ?? caller.projectId, instance: q.instance_id };
}

const strategyList: ProjectRoute = async (event, caller) => {
  const { project, instance } = strategyScope(event, caller);
  return json(200, { backup_strategies: await listStrategies(project, instance) });
};

const strategyDelete: ProjectRoute = async (event, caller) => {
  const { project, instance } = strategyScope(event, caller);
  await deleteStrategy(project, instance ?? '');
  return accepted();
};

/** `PUT /instances/{id}/backup_policy`: schedule, full/incremental pattern and retention. */
const policyPut: ProjectRoute = async (event, caller) => {
  const instance = await loadInstance(caller.projectId, event.pathParameters?.instance_id ?? '');
  let policy: ReturnType<typeof parsePolicy>;
  try {
    policy = parsePolicy(parsedBody(event));
  } catch (err) {
    throw new BadRequest((err as Error).message);
  }
  await updateInstance(caller.projectId, instance.id, {
    set: { backup_policy: policy, backup_policy_created: new Date().toISOString() },
    remove: ['backup_policy_state'],
  });
  return json(200, { backup_policy: policy });
};

const policyGet: ProjectRoute = async (event, caller) => {
  const instance = await loadInstance(caller.projectId, event.pathParameters?.instance_id ?? '');
  if (!instance.backup_policy) throw new NotFound('No backup policy is set for this instance.');
  return json(200, { backup_policy: instance.backup_policy, state: instance.backup_policy_state ?? {} });
};

const policyDelete: ProjectRoute = async (event, caller) => {
  const instance = await loadInstance(caller.projectId, event.pathParameters?.instance_id ?? '');
  await updateInstance(caller.projectId, instance.id, {
    remove: ['backup_policy', 'backup_policy_state', 'backup_policy_created'],
  });
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
    [`GET ${i}/backups`]: instanceBackups,
    [`POST ${s}`]: strategyCreate,
    [`GET ${s}`]: strategyList,
    [`DELETE ${s}`]: strategyDelete,
    [`PUT ${i}/backup_policy`]: policyPut,
    [`GET ${i}/backup_policy`]: policyGet,
    [`DELETE ${i}/backup_policy`]: policyDelete,
  }),
);

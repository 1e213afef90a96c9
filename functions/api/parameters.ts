import { getDatastoreVersion, resolveDatastoreVersion } from '#lib/catalog/index';
import { parameterRules } from '#lib/configurations/parameters/index';
import type { ParameterView } from '#lib/configurations/schemas';
import { NotFound } from '#lib/errors';
import { type ProjectRoute, projectHandler } from '#lib/http/handler';
import type { HttpEvent } from '#lib/http/response';
import { json } from '#lib/http/response';
import { byRouteKey } from '#lib/http/routing';

// `GET /datastores/[{ds}/]versions/{vid}/parameters[/{name}]`: the rules a group's values are
// checked against. `min`/`max` are left out when unset or 0, as Trove does.
async function versionOf(event: HttpEvent) {
  const p = event.pathParameters ?? {};
  if (p.datastore_id)
    return (await resolveDatastoreVersion({ type: p.datastore_id, version: p.version_id })).version;
  const version = await getDatastoreVersion(p.version_id ?? '');
  if (!version) throw new NotFound(`Datastore version '${p.version_id}' cannot be found.`);
  return version;
}

function view(rule: ReturnType<typeof parameterRules>[number], versionId: string): ParameterView {
  return {
    name: rule.name,
    restart_required: rule.restart_required,
    type: rule.type,
    ...(rule.min ? { min: rule.min } : {}),
    ...(rule.max ? { max: rule.max } : {}),
    datastore_version_id: versionId,
  };
}

const list: ProjectRoute = async (event) => {
  const version = await versionOf(event);
  const rules = parameterRules(version.manager as Parameters<typeof parameterRules>[0]);
  return json(200, { 'configuration-parameters': rules.map((r) => view(r, version.id)) });
};

const show: ProjectRoute = async (event) => {
  const version = await versionOf(event);
  const name = event.pathParameters?.name ?? '';
  const rule = parameterRules(version.manager as Parameters<typeof parameterRules>[0]).find(
    (r) => r.name === name,
  );
  if (!rule) throw new NotFound(`No configuration parameter found by name ${name}.`);
  return json(200, view(rule, version.id));
};

export const handler = projectHandler(
  byRouteKey({
    'GET /v1.0/{project_id}/datastores/versions/{version_id}/parameters': list,
    'GET /v1.0/{project_id}/datastores/versions/{version_id}/parameters/{name}': show,
    'GET /v1.0/{project_id}/datastores/{datastore_id}/versions/{version_id}/parameters': list,
    'GET /v1.0/{project_id}/datastores/{datastore_id}/versions/{version_id}/parameters/{name}': show,
  }),
);

import { randomUUID } from 'node:crypto';
import { resolveDatastoreVersion } from '../catalog/index.ts';
import { datastoreRefOf } from '../catalog/types.ts';
import { config } from '../config.ts';
import { troveTime } from '../dynamo.ts';
import { BadRequest, UnprocessableEntity } from '../errors.ts';
import { callGuest } from '../guest/calls.ts';
import type { InstanceItem } from '../instances/model.ts';
import { loadInstance } from '../instances/operations.ts';
import { updateInstance } from '../instances/repository.ts';
import { refusalToAct } from '../instances/status.ts';
import type { ConfigurationItem } from './model.ts';
import { parameterRules } from './parameters/index.ts';
import {
  configurationForVersion,
  deleteConfigurationItem,
  getConfiguration,
  instancesUsing,
  putConfiguration,
} from './repository.ts';
import { validateValues } from './validate.ts';

// Trove's configuration groups: named, validated engine settings attached to instances. Applying
// is a guest call (Trove's update_overrides + apply_overrides): dynamic values take effect at
// once, and the instance shows RESTART_REQUIRED until a restart when any value needs one.

const rulesOf = (manager: string) => parameterRules(manager as Parameters<typeof parameterRules>[0]);
const guestRules = (manager: string) =>
  rulesOf(manager).map((r) => ({ name: r.name, restart_required: r.restart_required }));

export async function createConfiguration(
  projectId: string,
  req: {
    name: string;
    description?: string;
    values: Record<string, unknown>;
    datastore?: { type?: string; version?: string; version_number?: string };
  },
): Promise<ConfigurationItem> {
  const { datastore, version } = await resolveDatastoreVersion(req.datastore);
  const values = validateValues(req.values, rulesOf(version.manager), datastore.name);
  const now = troveTime();
  const item: ConfigurationItem = {
    project_id: projectId,
    id: randomUUID(),
    name: req.name,
    description: req.description,
    values,
    datastore: datastoreRefOf(version),
    created: now,
    updated: now,
  };
  await putConfiguration(item);
  return item;
}

/** PATCH merges, PUT replaces; everything is validated before the group or any instance changes. */
export async function updateConfiguration(
  projectId: string,
  id: string,
  change: { values: Record<string, unknown>; name?: string; description?: string },
  mode: 'merge' | 'replace',
): Promise<void> {
  const item = await getConfiguration(projectId, id);
  const merged = mode === 'merge' ? { ...item.values, ...change.values } : change.values;
  const values = validateValues(merged, rulesOf(item.datastore.manager), item.datastore.type);
  const users = await instancesUsing(projectId, id);
  const instances = await Promise.all(users.map((u) => loadInstance(projectId, u.id)));
  for (const instance of instances) assertSettled(instance);
  await putConfiguration({
    ...item,
    values,
    name: change.name ?? item.name,
    description: change.description ?? item.description,
    updated: troveTime(),
  });
  for (const instance of instances) await applyTo(instance, values);
}

export async function deleteConfiguration(projectId: string, id: string): Promise<void> {
  await getConfiguration(projectId, id);
  const users = await instancesUsing(projectId, id);
  if (users.length) {
    throw new BadRequest(
      `Instance ${users[0]?.id} is assigned to configuration group ${id}; detach it first.`,
    );
  }
  await deleteConfigurationItem(projectId, id);
}

export async function attachConfiguration(projectId: string, instanceId: string, configurationId: string) {
  const instance = await loadInstance(projectId, instanceId);
  if (instance.configuration_id) {
    throw new BadRequest(
      `Instance ${instanceId} already has a Configuration Group attached: ${instance.configuration_id}.`,
    );
  }
  const group = await configurationForVersion(projectId, configurationId, {
    id: instance.datastore.version_id,
    name: instance.datastore.version,
  });
  assertSettled(instance);
  await applyTo(instance, group.values, configurationId);
}

export async function detachConfiguration(projectId: string, instanceId: string) {
  const instance = await loadInstance(projectId, instanceId);
  if (!instance.configuration_id) return;
  assertSettled(instance);
  const outcome = (await callGuest(
    instance,
    'remove_overrides',
    { rules: guestRules(instance.datastore.manager) },
    {
      timeoutSeconds: config.callHighTimeoutSeconds,
    },
  )) as { restartRequired: boolean };
  await updateInstance(projectId, instanceId, {
    set: outcome.restartRequired ? { task_status: 'RESTART_REQUIRED' } : {},
    remove: ['configuration_id'],
  });
}

/** Trove refuses to change the configuration of an instance that is busy or not running. */
function assertSettled(instance: InstanceItem) {
  const refusal = refusalToAct(instance);
  if (refusal) {
    throw new UnprocessableEntity(
      `Instance ${instance.id} is not currently available for an action to be performed (${refusal}).`,
    );
  }
}

async function applyTo(instance: InstanceItem, values: Record<string, unknown>, attachId?: string) {
  const outcome = (await callGuest(
    instance,
    'apply_overrides',
    { values, rules: guestRules(instance.datastore.manager) },
    { timeoutSeconds: config.callHighTimeoutSeconds },
  )) as { restartRequired: boolean };
  const set: Record<string, unknown> = {};
  if (attachId) set.configuration_id = attachId;
  // RESTART_REQUIRED stays until the instance is restarted; a later group change never clears it.
  if (outcome.restartRequired) set.task_status = 'RESTART_REQUIRED';
  await updateInstance(instance.project_id, instance.id, { set });
}

/** `GET /instances/{id}/configuration`: the values the instance runs with for every known parameter. */
export async function effectiveConfiguration(instance: InstanceItem): Promise<Record<string, string>> {
  const names = rulesOf(instance.datastore.manager).map((r) => r.name);
  return (await callGuest(
    instance,
    'get_effective_defaults',
    { names },
    { timeoutSeconds: config.callLowTimeoutSeconds },
  )) as Record<string, string>;
}

export { guestRules };

// Where published guest logs live in the deployment's bucket: one truth for the API (which
// grants uploads and deletes what a discard or a rotation leaves behind), the Swift facade
// (which reads them) and the guest (which names its objects).

/** Trove's guest_log_container_name: the Swift container, and the bucket prefix here. */
export const LOG_CONTAINER = 'database_logs';

/** A project's Swift account (AUTH_<project>) is this prefix of the bucket. */
export function logRoot(projectId: string): string {
  return `${LOG_CONTAINER}/${projectId}/`;
}

/** Everything one instance publishes sits below this prefix of its project's root. */
export function instanceLogPrefix(instanceId: string): string {
  return `${instanceId}/`;
}

/** Trove's `<instance_id>/<datastore>-<log>/`: one log's objects, within the container. */
export function logPrefix(instanceId: string, manager: string, name: string): string {
  return `${instanceLogPrefix(instanceId)}${manager}-${name}/`;
}

/** Trove's metafile: what was published of a log, beside (not under) its prefix. */
export function logMetafile(instanceId: string, manager: string, name: string): string {
  return `${logPrefix(instanceId, manager, name).replace(/\/$/, '')}_metafile`;
}

/**
 * Trove's object names, `log-<UTC time with microseconds>`: they sort in the order they were
 * written, which is how a discard names what it supersedes (every object before a name).
 */
export const OBJECT_NAME = /^log-\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$/;

import {
  flavorsForVersion,
  listDatastores,
  listDatastoreVersions,
  showDatastore,
  showDatastoreVersion,
  showVersionById,
} from '#lib/catalog/queries';
import type { VolumeTypesResponse } from '#lib/catalog/schemas';
import { datastoreView, flavorView, versionView } from '#lib/catalog/views';
import type { Caller } from '#lib/http/auth';
import { projectHandler } from '#lib/http/handler';
import { baseUrl, type HttpEvent, json } from '#lib/http/response';
import { byRouteKey } from '#lib/http/routing';

// Trove's datastore routes (TROVE_API.md §5), read-only, in one function.
const P = 'GET /v1.0/{project_id}/datastores';
const param = (event: HttpEvent, name: string) => event.pathParameters?.[name] ?? '';
const ctx = (event: HttpEvent, caller: Caller) => ({
  base: baseUrl(event),
  projectId: caller.projectId,
  isAdmin: caller.isAdmin,
});

export const handler = projectHandler(
  byRouteKey({
    [P]: async (event, caller) => {
      const all = await listDatastores(caller.isAdmin);
      return json(200, {
        datastores: all.map((d) => datastoreView(d.datastore, d.versions, ctx(event, caller))),
      });
    },
    [`${P}/{datastore_id}`]: async (event, caller) => {
      const d = await showDatastore(param(event, 'datastore_id'));
      return json(200, { datastore: datastoreView(d.datastore, d.versions, ctx(event, caller)) });
    },
    [`${P}/{datastore_id}/versions`]: async (event, caller) => {
      const versions = await listDatastoreVersions(param(event, 'datastore_id'), caller.isAdmin);
      return json(200, { versions: versions.map((v) => versionView(v, ctx(event, caller))) });
    },
    [`${P}/{datastore_id}/versions/{version_id}`]: async (event, caller) => {
      const v = await showDatastoreVersion(param(event, 'datastore_id'), param(event, 'version_id'));
      return json(200, { version: versionView(v, ctx(event, caller)) });
    },
    [`${P}/versions/{version_id}`]: async (event, caller) => {
      const v = await showVersionById(param(event, 'version_id'));
      return json(200, { version: versionView(v, ctx(event, caller)) });
    },
    [`${P}/{datastore_id}/versions/{version_id}/flavors`]: async (event, caller) => {
      const flavors = await flavorsForVersion(param(event, 'datastore_id'), param(event, 'version_id'));
      return json(200, { flavors: flavors.map((f) => flavorView(f, ctx(event, caller))) });
    },
    // Trove lists the Cinder types bound to the version, or all of them, and checks neither the
    // datastore nor the version. Volumes here (a loop-mounted file, an EBS root) have no types.
    [`${P}/{datastore_id}/versions/{version_id}/volume-types`]: async (_event: HttpEvent, _caller: Caller) =>
      json(200, { volume_types: [] } satisfies VolumeTypesResponse),
  }),
);

import {
  createDatastoreVersion,
  deleteDatastore,
  deleteDatastoreVersion,
  updateDatastoreVersion,
} from '#lib/catalog/mgmt';
import { listDatastores, showVersionWithDefault } from '#lib/catalog/queries';
import { CreateDatastoreVersionRequest, UpdateDatastoreVersionRequest } from '#lib/catalog/schemas';
import { mgmtVersionView } from '#lib/catalog/views';
import { Forbidden } from '#lib/errors';
import { parsedBody } from '#lib/http/body';
import { projectHandler } from '#lib/http/handler';
import { accepted, type HttpEvent, json } from '#lib/http/response';
import { adminOnly, byRouteKey } from '#lib/http/routing';
import { validate } from '#lib/validation';

// Trove's admin API for datastore versions (`openstack datastore version create/set/delete`,
// TROVE_API.md §5), and the datastore delete (`openstack datastore delete`): the catalog's
// writes, in the one function allowed to write the catalog table. The mgmt routes are admin only
// (others get Trove's 401); the datastore delete is a policy check (403), as Trove's.
const P = '/v1.0/{project_id}/mgmt/datastore-versions';
const versionId = (event: HttpEvent) => event.pathParameters?.version_id ?? '';

export const handler = projectHandler(
  byRouteKey({
    [`GET ${P}`]: adminOnly(async () => {
      const all = await listDatastores(true);
      const versions = all.flatMap((d) =>
        d.versions.map((v) => mgmtVersionView(v, d.datastore.default_version_id)),
      );
      return json(200, { versions });
    }),
    [`GET ${P}/{version_id}`]: adminOnly(async (event) => {
      const { version, defaultVersionId } = await showVersionWithDefault(versionId(event));
      return json(200, { version: mgmtVersionView(version, defaultVersionId) });
    }),
    [`POST ${P}`]: adminOnly(async (event) => {
      await createDatastoreVersion(validate(CreateDatastoreVersionRequest, parsedBody(event)).version);
      return accepted();
    }),
    [`DELETE ${P}/{version_id}`]: adminOnly(async (event) => {
      await deleteDatastoreVersion(versionId(event));
      return accepted();
    }),
    'DELETE /v1.0/{project_id}/datastores/{datastore_id}': async (event, caller) => {
      if (!caller.isAdmin) throw new Forbidden("Policy doesn't allow datastore:delete to be performed.");
      await deleteDatastore(event.pathParameters?.datastore_id ?? '');
      return accepted();
    },
    [`PATCH ${P}/{version_id}`]: adminOnly(async (event) => {
      await updateDatastoreVersion(
        versionId(event),
        validate(UpdateDatastoreVersionRequest, parsedBody(event)),
      );
      return accepted();
    }),
  }),
);

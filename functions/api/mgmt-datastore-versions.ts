import { createDatastoreVersion, updateDatastoreVersion } from '#lib/catalog/mgmt';
import { listDatastores, showVersionWithDefault } from '#lib/catalog/queries';
import { CreateDatastoreVersionRequest, UpdateDatastoreVersionRequest } from '#lib/catalog/schemas';
import { mgmtVersionView } from '#lib/catalog/views';
import { parsedBody } from '#lib/http/body';
import { projectHandler } from '#lib/http/handler';
import { accepted, type HttpEvent, json } from '#lib/http/response';
import { adminOnly, byRouteKey } from '#lib/http/routing';
import { validate } from '#lib/validation';

// Trove's admin API for datastore versions (`openstack datastore version create/set`,
// TROVE_API.md §5). Every route is admin only: others get Trove's 401.
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
    [`PATCH ${P}/{version_id}`]: adminOnly(async (event) => {
      await updateDatastoreVersion(
        versionId(event),
        validate(UpdateDatastoreVersionRequest, parsedBody(event)),
      );
      return accepted();
    }),
  }),
);

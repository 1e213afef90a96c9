import { createFlavor, deleteFlavor } from '#lib/catalog/mgmt-flavors';
import { listFlavors, showFlavor } from '#lib/catalog/queries';
import { CreateFlavorRequest } from '#lib/catalog/schemas';
import { flavorView } from '#lib/catalog/views';
import type { Caller } from '#lib/http/auth';
import { parsedBody } from '#lib/http/body';
import { projectHandler } from '#lib/http/handler';
import { accepted, baseUrl, type HttpEvent, json } from '#lib/http/response';
import { adminOnly, byRouteKey } from '#lib/http/routing';
import { validate } from '#lib/validation';

// Flavors (TROVE_API.md §5): reads for everyone, and a Troveless extension under /mgmt for
// admins to add and remove them, since no Nova holds them. Reads and writes are separate
// functions (serverless/functions/catalog.yml) so that only the admin one may write to the
// catalog; each routes only its own paths here.
const flavorId = (event: HttpEvent) => event.pathParameters?.flavor_id ?? '';
const ctx = (event: HttpEvent, caller: Caller) => ({ base: baseUrl(event), projectId: caller.projectId });

export const handler = projectHandler(
  byRouteKey({
    'GET /v1.0/{project_id}/flavors': async (event, caller) => {
      const flavors = await listFlavors();
      return json(200, { flavors: flavors.map((f) => flavorView(f, ctx(event, caller))) });
    },
    'GET /v1.0/{project_id}/flavors/{flavor_id}': async (event, caller) => {
      const flavor = await showFlavor(flavorId(event));
      return json(200, { flavor: flavorView(flavor, ctx(event, caller)) });
    },
    /** 202 like Trove's other mgmt writes, with the flavor so the caller learns a chosen id. */
    'POST /v1.0/{project_id}/mgmt/flavors': adminOnly(async (event, caller) => {
      const request = validate(CreateFlavorRequest, parsedBody(event)).flavor;
      const flavor = await createFlavor(request);
      return json(202, { flavor: flavorView(flavor, ctx(event, caller)) });
    }),
    'DELETE /v1.0/{project_id}/mgmt/flavors/{flavor_id}': adminOnly(async (event) => {
      await deleteFlavor(flavorId(event));
      return accepted();
    }),
  }),
);

import { projectHandler } from '#lib/http/handler';
import { json } from '#lib/http/response';
import { loadCertificate } from '#lib/instances/certificate-store';
import { loadInstance } from '#lib/instances/operations';
import { sslView } from '#lib/instances/ssl';

/** `GET /instances/{id}/ssl`: Trove's ssl_show, from the certificate issued at create (no guest call). */
export const handler = projectHandler(async (event, caller) => {
  const item = await loadInstance(caller.projectId, event.pathParameters?.instance_id ?? '');
  return json(200, sslView(await loadCertificate(item)));
});

import { unwrapKey } from '../guest/keys.ts';
import { encryptFor } from '../guest/sealed.ts';
import { certificateAuthority } from '../tls/authority.ts';
import { issueInstanceCertificate, summarize } from '../tls/certificates.ts';
import { findInstance, updateInstance } from './repository.ts';
import type { InstanceSsl } from './ssl.ts';
import { InstanceGone, type StepInput } from './steps.ts';

// Trove's instance SSL (TROVE_API.md §8.5), issued at create: after the server is launched (its
// addresses are known) and before prepare. The certificate is public and kept on the item for
// `GET /instances/{id}/ssl`; its key is sealed with the guest's own key and travels inside the
// signed prepare order, like the users' passwords, and is removed once prepare has run. This
// step is the only one that reads the CA key (taskIssueCertificate's role).

export async function issueCertificate(input: StepInput) {
  const item = await findInstance(input.instance_id);
  if (!item || item.project_id !== input.project_id)
    throw new InstanceGone(`instance ${input.instance_id} is gone`);
  // Issued once: a retried step, or a workflow resumed after a restart, keeps the first one.
  if (item.ssl) return { serial: item.ssl.serial };
  const addresses = (item.addresses ?? []).map((a) => a.address);
  if (addresses.length === 0)
    throw new Error(`instance ${item.id} has no address yet: its certificate cannot name one`);
  const issued = await issueInstanceCertificate(await certificateAuthority(), item.id, addresses);
  const ssl: InstanceSsl = {
    certificate: issued.certificate,
    ca_certificate: issued.ca_certificate,
    ...summarize(issued.certificate),
  };
  const key = await unwrapKey(item.wrapped_key);
  await updateInstance(item.project_id, item.id, {
    set: { ssl, sealed_tls: encryptFor(key, issued) },
    // Two racing attempts: the first one's certificate stays (false here means it was first).
    condition: { expression: 'attribute_not_exists(ssl)' },
  });
  return { serial: ssl.serial };
}

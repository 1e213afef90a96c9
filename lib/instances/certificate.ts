import { unwrapKey } from '../guest/keys.ts';
import { encryptFor } from '../guest/sealed.ts';
import { logger } from '../logger.ts';
import { Phases } from '../phases.ts';
import { certificateAuthority } from '../tls/authority.ts';
import { issueInstanceCertificate, summarize } from '../tls/certificates.ts';
import { certificateSerial, putCertificate } from './certificate-store.ts';
import { getInstance, transact, updateItem } from './repository.ts';
import type { InstanceSsl } from './ssl.ts';
import { InstanceGone, type StepInput } from './steps.ts';

// Trove's instance SSL (TROVE_API.md §8.5), issued at create once the server's addresses are
// known (from its port, while it launches; else after the launch) and before prepare. The
// certificate is public and kept on the item for `GET /instances/{id}/ssl`; its key is sealed
// with the guest's own key and travels inside the signed prepare order, like the users'
// passwords, and is removed once prepare has run. This step is the only one that reads the CA
// key (taskIssueCertificate's role).

export async function issueCertificate(input: StepInput & { addresses?: string[] }) {
  const phases = new Phases();
  const item = await phases.time('read', () => getInstance(input.project_id, input.instance_id));
  if (!item) throw new InstanceGone(`instance ${input.instance_id} is gone`);
  // Issued once: a retried step, or a workflow resumed after a restart, keeps the first one.
  const issuedBefore = certificateSerial(item);
  if (issuedBefore) return { serial: issuedBefore };
  // The port's addresses (issued while the server launches on them), else the launched server's.
  const addresses = input.addresses?.length ? input.addresses : (item.addresses ?? []).map((a) => a.address);
  if (addresses.length === 0)
    throw new Error(`instance ${item.id} has no address yet: its certificate cannot name one`);
  // The guest's key is unwrapped while the certificate is made (a create waits on this step).
  const key = phases.time('key', () => unwrapKey(item.wrapped_key));
  key.catch(() => {});
  const authority = await phases.time('authority', () => certificateAuthority());
  const issued = await phases.time('issue', () => issueInstanceCertificate(authority, item.id, addresses));
  const ssl: InstanceSsl = {
    certificate: issued.certificate,
    ca_certificate: issued.ca_certificate,
    ...summarize(issued.certificate),
  };
  const sealed = encryptFor(await key, issued);
  // The serial and sealed key on the instance, the certificate in its own item: both or neither.
  const written = await phases.time('record', () =>
    transact([
      updateItem(item.project_id, item.id, {
        set: { ssl_serial: ssl.serial, sealed_tls: sealed },
        condition: { expression: 'attribute_not_exists(ssl_serial) AND attribute_not_exists(ssl)' },
      }),
      putCertificate(item, ssl),
    ]),
  );
  logger.info('certificate issued', { instance_id: item.id, phases: `${phases}` });
  if (written) return { serial: ssl.serial };
  // Two racing attempts: the first one's certificate stays.
  const first = certificateSerial(await getInstance(item.project_id, item.id));
  if (!first) throw new InstanceGone(`instance ${input.instance_id} is gone`);
  return { serial: first };
}

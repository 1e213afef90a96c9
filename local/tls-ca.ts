import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createCertificateAuthority } from '../lib/tls/certificates.ts';

// The local cloud's instance CA (AWS keeps it in an SSM SecureString): created once into the
// state dir, readable by the owner only, and handed to the control plane by path
// (TROVELESS_CA_FILE), never to guests. A state dir from before TLS gets one at the next start.
export async function localCertificateAuthority(stateDir: string): Promise<string> {
  const file = join(stateDir, 'instance-ca.json');
  if (existsSync(file)) return file;
  const ca = await createCertificateAuthority('Troveless local instance CA');
  await writeFile(file, JSON.stringify(ca), { mode: 0o600, flag: 'wx' }).catch(
    (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EEXIST') throw err; // another start made it first: that one is the CA
    },
  );
  return file;
}

import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { type Account, ensureDir, writeConfig } from './fs.ts';

// The instance's TLS key and certificate (Trove's instance SSL), as the control plane issued them
// at create (lib/instances/certificate.ts) and prepare delivered them, sealed with the guest key.
// They live in the instance's own directory, owned by the engine's user (PostgreSQL refuses a key
// anyone else can read); every engine serves TLS whenever they are there.

export interface TlsMaterial {
  key: string;
  certificate: string;
  ca_certificate: string;
}

export interface TlsFiles {
  dir: string;
  key: string;
  certificate: string;
  ca: string;
}

export function tlsFiles(baseDir: string): TlsFiles {
  const dir = join(baseDir, 'tls');
  return { dir, key: join(dir, 'server.key'), certificate: join(dir, 'server.crt'), ca: join(dir, 'ca.crt') };
}

/** Writes the key (0600) and certificates (0644) for the engine's user; the key is never logged. */
export async function installTls(files: TlsFiles, material: TlsMaterial, owner: Account): Promise<void> {
  for (const [name, value] of Object.entries(material)) {
    if (typeof value !== 'string' || !value.includes('-----BEGIN '))
      throw new Error(`the instance's TLS ${name} is not PEM`);
  }
  await ensureDir(files.dir, owner, 0o700);
  await writeConfig(files.key, material.key, owner, 0o600);
  await writeConfig(files.certificate, material.certificate, owner, 0o644);
  await writeConfig(files.ca, material.ca_certificate, owner, 0o644);
}

/** True when the instance has its key and certificates: the engine is then configured for TLS. */
export async function hasTls(files: TlsFiles): Promise<boolean> {
  const present = await Promise.all(
    [files.key, files.certificate, files.ca].map((f) =>
      stat(f).then(
        (s) => s.isFile(),
        () => false,
      ),
    ),
  );
  return present.every(Boolean);
}

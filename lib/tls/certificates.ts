import 'reflect-metadata'; // @peculiar/x509's dependency injection (tsyringe) needs it loaded first
import { randomBytes, webcrypto, X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import * as x509 from '@peculiar/x509';

// The deployment's own CA and the instance certificates it issues (Trove's instance SSL,
// TROVE_API.md §8.5). Keys are ECDSA P-256 made by Node's WebCrypto: fast (a certificate takes a
// few milliseconds, so a create does not notice) and served by the OpenSSL that MariaDB,
// PostgreSQL and Redis are built with. PEM everywhere: that is what the engines read.

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;

const ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY_MS = 86_400_000;
/** The CA outlives any instance it signs for. */
const CA_DAYS = 3650;
/** An instance certificate is not renewed (yet): it lasts as long as an instance reasonably does. */
const INSTANCE_DAYS = 1825;
/** notBefore a little in the past: a guest whose clock runs behind still accepts its own cert. */
const SKEW_MS = 5 * 60_000;

/** A CA as it is stored (0600 file locally, SSM SecureString in AWS): PEM key and certificate. */
export interface CertificateAuthority {
  key: string;
  certificate: string;
}

/** What an instance is given: its key and certificate, and the CA that clients verify against. */
export interface InstanceCertificate {
  key: string;
  certificate: string;
  ca_certificate: string;
}

/** What Trove's `GET /instances/{id}/ssl` shows of a certificate. */
export interface CertificateSummary {
  cn: string;
  expire_at: string;
  san: string[];
  serial: string;
}

export async function createCertificateAuthority(name: string): Promise<CertificateAuthority> {
  const keys = await generateKeys();
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `CN=${escapeDn(name)}`,
    notBefore: new Date(now - SKEW_MS),
    notAfter: new Date(now + CA_DAYS * DAY_MS),
    keys,
    signingAlgorithm: ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { key: await exportKey(keys.privateKey), certificate: cert.toString('pem') };
}

/**
 * A server certificate for one instance: CN is the instance id, and the subject alternative
 * names are its addresses (IP SANs for IPs, DNS SANs for names), which is what a verifying
 * client (sslmode=verify-full, --ssl-verify-server-cert, redis-cli --tls) checks.
 */
export async function issueInstanceCertificate(
  ca: CertificateAuthority,
  instanceId: string,
  addresses: string[],
): Promise<InstanceCertificate> {
  const names = [...new Set(addresses.map((a) => a.trim()).filter(Boolean))];
  if (names.length === 0) throw new Error(`instance ${instanceId} has no address to certify`);
  const caCert = new x509.X509Certificate(ca.certificate);
  const caKey = await importKey(ca.key);
  const keys = await generateKeys();
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: `CN=${escapeDn(instanceId)}`,
    issuer: caCert.subject,
    notBefore: new Date(now - SKEW_MS),
    notAfter: new Date(Math.min(now + INSTANCE_DAYS * DAY_MS, caCert.notAfter.getTime())),
    publicKey: keys.publicKey,
    signingKey: caKey,
    signingAlgorithm: ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      // clientAuth too: Redis Cluster's members present their own certificate to each other on
      // the cluster bus, which always asks for one (lib/clusters).
      new x509.ExtendedKeyUsageExtension([
        x509.ExtendedKeyUsage.serverAuth,
        x509.ExtendedKeyUsage.clientAuth,
      ]),
      new x509.SubjectAlternativeNameExtension(
        names.map((n) => (isIP(n) ? { type: 'ip' as const, value: n } : { type: 'dns' as const, value: n })),
      ),
      await x509.AuthorityKeyIdentifierExtension.create(caCert),
    ],
  });
  return {
    key: await exportKey(keys.privateKey),
    certificate: cert.toString('pem'),
    ca_certificate: ca.certificate,
  };
}

/** Trove's view of a certificate, read back from the PEM itself (never from what was asked for). */
export function summarize(certificatePem: string): CertificateSummary {
  const cert = new X509Certificate(certificatePem);
  const cn = /(?:^|\n)CN=([^\n]*)/.exec(cert.subject)?.[1] ?? '';
  const san = (cert.subjectAltName ?? '')
    .split(', ')
    .map((entry) => entry.replace(/^(IP Address|DNS):/, ''))
    .filter(Boolean);
  return {
    cn,
    expire_at: new Date(cert.validTo).toISOString(),
    san,
    serial: cert.serialNumber.toLowerCase(),
  };
}

/** Checks that a stored CA is one: its key signs what its certificate says (a wrong pair fails here, not in a guest). */
export async function checkCertificateAuthority(ca: CertificateAuthority): Promise<void> {
  const cert = new X509Certificate(ca.certificate);
  if (!cert.ca) throw new Error('the CA certificate is not a CA certificate');
  const probe = await issueInstanceCertificate(ca, 'probe', ['127.0.0.1']);
  if (!new X509Certificate(probe.certificate).verify(cert.publicKey))
    throw new Error('the CA key does not match the CA certificate');
}

async function generateKeys(): Promise<CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey(ALGORITHM, true, ['sign', 'verify'])) as CryptoKeyPair;
}

async function exportKey(key: CryptoKey): Promise<string> {
  const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', key)).toString('base64');
  return `-----BEGIN PRIVATE KEY-----\n${der.match(/.{1,64}/g)?.join('\n')}\n-----END PRIVATE KEY-----\n`;
}

async function importKey(pem: string): Promise<CryptoKey> {
  const der = Buffer.from(pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
  return (await webcrypto.subtle.importKey('pkcs8', der, ALGORITHM, false, ['sign'])) as CryptoKey;
}

/** 16 random bytes, positive (RFC 5280 serials are positive integers). */
function serial(): string {
  const bytes = randomBytes(16);
  bytes[0] = ((bytes[0] ?? 0) & 0x7f) | 0x10;
  return bytes.toString('hex');
}

/** Instance ids and stage names are plain, but a DN string must never be built from raw input. */
function escapeDn(value: string): string {
  return value.replace(/[,+"\\<>;=#]/g, (c) => `\\${c}`);
}

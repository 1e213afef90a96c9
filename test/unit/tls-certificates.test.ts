import { X509Certificate } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  checkCertificateAuthority,
  createCertificateAuthority,
  issueInstanceCertificate,
  summarize,
} from '../../lib/tls/certificates.ts';

// The deployment CA and the instance certificates it issues, read back with Node's own X.509
// parser (OpenSSL's), which is what the engines and clients will use.

describe('instance certificates', () => {
  it('are issued by the CA for exactly the instance addresses', async () => {
    const ca = await createCertificateAuthority('Troveless test CA');
    const issued = await issueInstanceCertificate(ca, 'inst-1', ['127.0.0.5', 'db.example.test']);
    const caCert = new X509Certificate(ca.certificate);
    const cert = new X509Certificate(issued.certificate);

    expect(caCert.ca).toBe(true);
    expect(cert.ca).toBe(false);
    expect(cert.checkIssued(caCert)).toBe(true);
    expect(cert.verify(caCert.publicKey)).toBe(true);
    expect(cert.checkIP('127.0.0.5')).toBe('127.0.0.5');
    expect(cert.checkIP('127.0.0.6')).toBeUndefined();
    expect(cert.checkHost('db.example.test')).toBe('db.example.test');
    expect(cert.keyUsage).toContain('1.3.6.1.5.5.7.3.1'); // serverAuth
    expect(issued.ca_certificate).toBe(ca.certificate);
    expect(issued.key).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    // The key is the certificate's: it signs what the certificate's public key verifies.
    const { createPrivateKey, sign, verify } = await import('node:crypto');
    const signature = sign('sha256', Buffer.from('x'), createPrivateKey(issued.key));
    expect(verify('sha256', Buffer.from('x'), cert.publicKey, signature)).toBe(true);

    const summary = summarize(issued.certificate);
    expect(summary).toMatchObject({ cn: 'inst-1', san: ['127.0.0.5', 'db.example.test'] });
    expect(Date.parse(summary.expire_at)).toBeGreaterThan(Date.now() + 365 * 86_400_000);
    expect(summary.serial).toBe(cert.serialNumber.toLowerCase());
  });

  it('are not issued by another CA, and each has its own key and serial', async () => {
    const [a, b] = await Promise.all([createCertificateAuthority('A'), createCertificateAuthority('B')]);
    const one = await issueInstanceCertificate(a, 'x', ['127.0.0.2']);
    const two = await issueInstanceCertificate(a, 'x', ['127.0.0.2']);
    expect(new X509Certificate(one.certificate).verify(new X509Certificate(b.certificate).publicKey)).toBe(
      false,
    );
    expect(one.key).not.toBe(two.key);
    expect(summarize(one.certificate).serial).not.toBe(summarize(two.certificate).serial);
  });

  it('refuses an instance without an address, and a CA whose key is not its own', async () => {
    const [a, b] = await Promise.all([createCertificateAuthority('A'), createCertificateAuthority('B')]);
    await expect(issueInstanceCertificate(a, 'x', [])).rejects.toThrow(/no address/);
    await expect(checkCertificateAuthority(a)).resolves.toBeUndefined();
    await expect(checkCertificateAuthority({ key: a.key, certificate: b.certificate })).rejects.toThrow(
      /does not match/,
    );
  });
});

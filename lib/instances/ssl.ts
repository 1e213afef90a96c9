import type { SslResponse } from './schemas.ts';

// Trove's instance SSL view (TROVE_API.md §8.5, `ssl_show`), from what the instance item keeps
// of the certificate issued at create (lib/instances/certificate.ts): public material only.

export interface InstanceSsl {
  certificate: string;
  ca_certificate: string;
  cn: string;
  expire_at: string;
  san: string[];
  serial: string;
}

/**
 * `{"ssl":{"status","mode","certificate":{"cn","expire_at","san"}}}` as Trove, plus what a
 * client needs to verify the instance: the certificate itself (`pem`, `serial`) and the CA
 * certificate to trust (`ca_certificate`). `off` while the instance has no certificate yet.
 */
export function sslView(ssl: InstanceSsl | undefined): SslResponse {
  if (!ssl) return { ssl: { status: 'off' } };
  return {
    ssl: {
      status: 'on',
      mode: 'basic',
      certificate: {
        cn: ssl.cn,
        expire_at: ssl.expire_at,
        san: ssl.san,
        serial: ssl.serial,
        pem: ssl.certificate,
      },
      ca_certificate: ssl.ca_certificate,
    },
  };
}

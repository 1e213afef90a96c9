import { X509Certificate } from 'node:crypto';
import Redis from 'ioredis';
import { expect } from 'vitest';
import { call, type Login } from './helpers.ts';
import { endpointOf, type InstanceView } from './instance-helpers.ts';

// How a user reaches an instance's engine: at the address it shows, over TLS verified against the
// CA that `GET /instances/{id}/ssl` names, and for Redis with the password that enabling root
// returns (Redis never accepts a client without one).

export interface Endpoint {
  host: string;
  port: number;
  /** The deployment CA's certificate: clients verify the instance's certificate against it. */
  ca: string;
  /** Redis only: root's password (enabling root sets a new one and returns it). */
  password?: string;
}

/** The instance's SSL view: on, with a certificate for exactly the addresses it shows, issued by the CA. */
export async function instanceSsl(who: Login, view: InstanceView) {
  const res = await call('GET', `/v1.0/${who.projectId}/instances/${view.id}/ssl`, who.token);
  expect(res.status).toBe(200);
  const ssl = (res.json as { ssl: Record<string, unknown> }).ssl as {
    status: string;
    certificate: { cn: string; san: string[]; expire_at: string; pem: string };
    ca_certificate: string;
  };
  expect(ssl.status).toBe('on');
  expect(ssl.certificate.san).toEqual((view.addresses ?? []).map((a) => a.address));
  const cert = new X509Certificate(ssl.certificate.pem);
  expect(cert.verify(new X509Certificate(ssl.ca_certificate).publicKey)).toBe(true);
  return ssl;
}

export async function enableRoot(who: Login, view: InstanceView): Promise<string> {
  const res = await call('POST', `/v1.0/${who.projectId}/instances/${view.id}/root`, who.token);
  expect(res.status).toBe(200);
  return (res.json as { user: { password: string } }).user.password;
}

/** Where and how to connect to `view`'s engine; for Redis this enables root to learn a password. */
export async function endpointFor(who: Login, view: InstanceView): Promise<Endpoint> {
  const { host, port } = endpointOf(view);
  const ssl = await instanceSsl(who, view);
  const type = (view.datastore as { type?: string } | undefined)?.type;
  const password = type === 'redis' ? await enableRoot(who, view) : undefined;
  return { host, port, ca: ssl.ca_certificate, password };
}

/** A connected ioredis client over TLS (verifying the instance against the CA), or the refusal; `{ ...at, password: undefined }` connects without one. */
export async function redisClient(at: Endpoint, password = at.password): Promise<Redis> {
  const client = new Redis({
    host: at.host,
    port: at.port,
    password,
    tls: { ca: at.ca, rejectUnauthorized: true },
    lazyConnect: true,
    connectTimeout: 5_000,
    maxRetriesPerRequest: 1,
    retryStrategy: () => null,
  });
  // ioredis opens with HELLO; a refusal (NOAUTH, WRONGPASS) comes as an event.
  let refused: Error | undefined;
  client.on('error', (err: Error) => {
    refused = err;
  });
  await client.connect().catch((err: unknown) => {
    client.disconnect();
    throw refused ?? err;
  });
  return client;
}

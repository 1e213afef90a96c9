import { readFile } from 'node:fs/promises';
import {
  GetParameterCommand,
  ParameterAlreadyExists,
  ParameterNotFound,
  PutParameterCommand,
  SSMClient,
} from '@aws-sdk/client-ssm';
import {
  type CertificateAuthority,
  checkCertificateAuthority,
  createCertificateAuthority,
} from './certificates.ts';

// Where the deployment's CA (key and certificate) is kept, chosen by configuration:
//   - TROVELESS_CA_FILE: a JSON file { key, certificate } (the local cloud creates one, 0600, in
//     its state dir); or
//   - TROVELESS_CA_PARAMETER: an SSM SecureString holding the same JSON. The first certificate a
//     deployment issues creates it (PutParameter without overwrite, so two concurrent first
//     issues agree on one CA). Only the function that signs may read or write it
//     (serverless/functions/workflows.yml, taskIssueCertificate).
// The CA key never leaves the signing function: instances and the API get the certificate only.

let cached: Promise<CertificateAuthority> | undefined;

export function certificateAuthority(): Promise<CertificateAuthority> {
  cached ??= load().catch((err: unknown) => {
    cached = undefined;
    throw err;
  });
  return cached;
}

async function load(): Promise<CertificateAuthority> {
  const file = process.env.TROVELESS_CA_FILE;
  const name = process.env.TROVELESS_CA_PARAMETER;
  if (!file && !name) throw new Error('Neither TROVELESS_CA_FILE nor TROVELESS_CA_PARAMETER is set');
  const ca = file
    ? parse(await readFile(file, 'utf8'), file)
    : await fromParameter(name ?? '', new SSMClient({}));
  // A mismatched key and certificate fail here, not later in every client of every instance.
  await checkCertificateAuthority(ca);
  return ca;
}

export async function fromParameter(name: string, ssm: SSMClient): Promise<CertificateAuthority> {
  const read = async () => {
    const out = await ssm.send(new GetParameterCommand({ Name: name, WithDecryption: true }));
    return parse(out.Parameter?.Value ?? '', name);
  };
  try {
    return await read();
  } catch (err) {
    if (!(err instanceof ParameterNotFound)) throw err;
  }
  const stage = process.env.TROVELESS_STAGE ?? 'dev';
  const ca = await createCertificateAuthority(`Troveless ${stage} instance CA`);
  try {
    await ssm.send(
      new PutParameterCommand({
        Name: name,
        Type: 'SecureString',
        Value: JSON.stringify(ca),
        Overwrite: false,
        Description: 'Troveless instance CA (key and certificate); only the signing function reads it',
      }),
    );
    return ca;
  } catch (err) {
    // Another first issue won the race: its CA is the deployment's.
    if (err instanceof ParameterAlreadyExists) return read();
    throw err;
  }
}

function parse(text: string, where: string): CertificateAuthority {
  let value: Partial<CertificateAuthority>;
  try {
    value = JSON.parse(text) as Partial<CertificateAuthority>;
  } catch {
    throw new Error(`the CA in ${where} is not JSON`);
  }
  if (typeof value.key !== 'string' || typeof value.certificate !== 'string')
    throw new Error(`the CA in ${where} lacks its key or certificate`);
  return { key: value.key, certificate: value.certificate };
}

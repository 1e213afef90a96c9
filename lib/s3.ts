import { S3Client } from '@aws-sdk/client-s3';

// The S3 client of the control plane and the guests. Endpoint and checksum behaviour come from
// the SDK's own variables (AWS_ENDPOINT_URL_S3, AWS_REQUEST_CHECKSUM_CALCULATION); path-style
// addressing, which S3-compatible servers without virtual-host buckets need, from ours.
export function s3Client(): S3Client {
  return new S3Client({ forcePathStyle: process.env.TROVELESS_S3_FORCE_PATH_STYLE === 'true' });
}

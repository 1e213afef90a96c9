import { S3Client } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { removeSuperseded, uploadGrant } from '../../lib/logs/objects.ts';

// The upload grant is all a guest gets to publish its logs with: an S3 POST policy that admits
// objects below its own instance's prefix only, of at most one chunk, for a bounded time. S3
// enforces the policy; this pins what the policy says.

const bucket = {
  client: new S3Client({
    region: 'us-east-1',
    endpoint: 'http://127.0.0.1:9',
    forcePathStyle: true,
    credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' },
  }),
  name: 'deployment-bucket',
};

function policyOf(fields: Record<string, string>) {
  return JSON.parse(Buffer.from(fields.Policy ?? '', 'base64').toString('utf8')) as {
    expiration: string;
    conditions: unknown[];
  };
}

describe('a guest log upload grant', () => {
  it('admits only the instance’s own prefix of its project, one chunk at a time, until it expires', async () => {
    const t0 = Date.now();
    const grant = await uploadGrant('proj-1', 'inst-1', 65_536, 120, bucket);
    expect(grant.url).toBe('http://127.0.0.1:9/deployment-bucket');
    expect(grant.fields['X-Amz-Signature']).toMatch(/^[0-9a-f]{64}$/);
    const policy = policyOf(grant.fields);
    expect(policy.conditions).toContainEqual(['starts-with', '$key', 'database_logs/proj-1/inst-1/']);
    expect(policy.conditions).toContainEqual(['content-length-range', 0, 65_536]);
    expect(policy.conditions).toContainEqual({ bucket: 'deployment-bucket' });
    const expires = Date.parse(policy.expiration) - t0;
    expect(expires).toBeGreaterThan(110_000);
    expect(expires).toBeLessThan(130_000);
    // Nothing else in the policy widens the key: no other key condition, no exact key elsewhere.
    const keyConditions = policy.conditions.filter((c) => JSON.stringify(c).includes('key'));
    expect(keyConditions).toEqual([['starts-with', '$key', 'database_logs/proj-1/inst-1/']]);
  });

  it('is another prefix for another instance', async () => {
    const a = policyOf((await uploadGrant('proj-1', 'inst-1', 1024, 60, bucket)).fields);
    const b = policyOf((await uploadGrant('proj-2', 'inst-2', 1024, 60, bucket)).fields);
    expect(a.conditions).not.toContainEqual(['starts-with', '$key', 'database_logs/proj-2/inst-2/']);
    expect(b.conditions).toContainEqual(['starts-with', '$key', 'database_logs/proj-2/inst-2/']);
  });

  it('deletes nothing for a guest answer that names no object', async () => {
    await expect(
      removeSuperseded(
        'proj-1',
        'inst-1',
        'mysql',
        'general',
        { before: '../other', metafile: true },
        bucket,
      ),
    ).rejects.toThrow('named no object');
  });
});

import type * as Ec2Sdk from '@aws-sdk/client-ec2';

/**
 * @aws-sdk/client-ec2, loaded on first use. It is the SDK's largest client (~1.3 s to import on
 * Node 22 here); a static import is hoisted into every bundle that can reach the compute driver
 * (the instances API among them), and each of their cold starts would pay for it even where the
 * driver is `local` or the call never touches EC2. Node caches the module after the first load.
 */
export function ec2Sdk(): Promise<typeof Ec2Sdk> {
  return import('@aws-sdk/client-ec2');
}

import type { ComputeDriver } from './driver.ts';
import { Ec2ComputeDriver, type Ec2DriverOptions } from './ec2.ts';
import { LocalComputeDriver } from './local.ts';

// The compute driver is configuration, not code: TROVELESS_COMPUTE_DRIVER picks it (`local` by
// default, as `npm start` and the tests use), and the EC2 driver's settings come from env too.

export function ec2OptionsFromEnv(env: NodeJS.ProcessEnv = process.env): Ec2DriverOptions {
  const imageId = env.TROVELESS_EC2_IMAGE_ID;
  if (!imageId) throw new Error('TROVELESS_COMPUTE_DRIVER=ec2 needs TROVELESS_EC2_IMAGE_ID');
  const groups = (env.TROVELESS_EC2_SECURITY_GROUP_IDS ?? '')
    .split(',')
    .map((g) => g.trim())
    .filter(Boolean);
  return {
    imageId,
    subnetId: env.TROVELESS_EC2_SUBNET_ID || undefined,
    vpcId: env.TROVELESS_EC2_VPC_ID || undefined,
    securityGroupIds: groups.length ? groups : undefined,
    instanceProfile: env.TROVELESS_EC2_INSTANCE_PROFILE || undefined,
    keyParameterPrefix:
      env.TROVELESS_GUEST_KEY_PARAMETERS || `/troveless/${env.TROVELESS_STAGE || 'dev'}/guest-keys`,
  };
}

/** Making the EC2 driver loads no SDK: ec2-sdk.ts loads @aws-sdk/client-ec2 at its first call. */
export function computeDriver(env: NodeJS.ProcessEnv = process.env): ComputeDriver {
  const kind = env.TROVELESS_COMPUTE_DRIVER || 'local';
  switch (kind) {
    case 'local':
      return new LocalComputeDriver(env.TROVELESS_COMPUTE_ENDPOINT, env.TROVELESS_COMPUTE_SECRET ?? '');
    case 'ec2':
      return new Ec2ComputeDriver(ec2OptionsFromEnv(env));
    default:
      throw new Error(`TROVELESS_COMPUTE_DRIVER must be local or ec2, not ${kind}`);
  }
}

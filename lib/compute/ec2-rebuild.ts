import type { EC2Client } from '@aws-sdk/client-ec2';
import { ImageNotFound, RebuildPending } from './driver.ts';
import { ec2Sdk } from './ec2-sdk.ts';

// Nova's rebuild on EC2 (Trove's mgmt rebuild): a replace-root-volume task. EC2 puts a new root
// volume made from the image in place of the old one and reboots the instance on it; the
// instance keeps its id, addresses, security groups, user data and every other volume (the data
// volume stays attached, as Nova's rebuild keeps an instance's Cinder volumes). At its boot on
// the fresh root, cloud-init runs the user data again: the agent's config, and the operator's
// script that mounts the data volume (which must not format a volume that has a filesystem).

/** EC2's answers for an AMI id that is malformed or names no image this account may use. */
const UNKNOWN_IMAGE = /^InvalidAMIID\./;

/** Whether the AMI exists and can be used (DescribeImages; `available` only). */
export async function amiExists(ec2: EC2Client, imageId: string): Promise<boolean> {
  const sdk = await ec2Sdk();
  try {
    const out = await ec2.send(new sdk.DescribeImagesCommand({ ImageIds: [imageId] }));
    return (out.Images ?? []).some((i) => i.ImageId === imageId && i.State === 'available');
  } catch (err) {
    if (err instanceof Error && UNKNOWN_IMAGE.test(err.name)) return false;
    throw err;
  }
}

/**
 * One step of a root replacement, as the workflow repeats it: CreateReplaceRootVolumeTask with
 * the request's token (EC2 answers a repeated call with the same task, so a retried step starts
 * no second one), then the task's state: done once `succeeded`, RebuildPending while it runs,
 * an error with EC2's state when it failed (EC2 then keeps the old root attached).
 */
export async function replaceRootVolume(
  ec2: EC2Client,
  serverId: string,
  imageId: string,
  requestToken?: string,
): Promise<void> {
  const sdk = await ec2Sdk();
  let taskId: string | undefined;
  try {
    const created = await ec2.send(
      new sdk.CreateReplaceRootVolumeTaskCommand({
        InstanceId: serverId,
        ImageId: imageId,
        // The old root goes with the task: nothing of the replaced image is left to pay for.
        DeleteReplacedRootVolume: true,
        ClientToken: requestToken,
      }),
    );
    taskId = created.ReplaceRootVolumeTask?.ReplaceRootVolumeTaskId;
  } catch (err) {
    if (err instanceof Error && UNKNOWN_IMAGE.test(err.name)) throw new ImageNotFound(imageId);
    throw err;
  }
  if (!taskId) throw new Error(`EC2 started no root volume replacement for ${serverId}`);
  const described = await ec2.send(
    new sdk.DescribeReplaceRootVolumeTasksCommand({ ReplaceRootVolumeTaskIds: [taskId] }),
  );
  const state = described.ReplaceRootVolumeTasks?.find(
    (t) => t.ReplaceRootVolumeTaskId === taskId,
  )?.TaskState;
  switch (state) {
    case 'succeeded':
      return;
    case 'failed':
    case 'failed-detached':
      throw new Error(
        `replacing the root volume of ${serverId} with image ${imageId} failed (task ${taskId}: ${state})`,
      );
    default:
      throw new RebuildPending(
        `the root volume of ${serverId} is being replaced (task ${taskId}: ${state ?? 'pending'})`,
      );
  }
}

import type { EC2Client, Instance } from '@aws-sdk/client-ec2';
import { ResizePending } from './driver.ts';
import { ec2Sdk } from './ec2-sdk.ts';

// Nova's resize and Cinder's extend on EC2, as steps the workflow repeats until they are done:
// each call looks at where the instance or volume is and takes the next step, so a step that
// crashed or was retried never does anything twice. ResizePending says "call again".

/**
 * An instance's type changes only while it is stopped: stop it, change the type, start it, and
 * report done once it runs with the new type. The guest agent boots with it and the workflow
 * then starts the engine with the new flavor's memory settings.
 */
export async function resizeInstance(ec2: EC2Client, instance: Instance, type: string): Promise<void> {
  const sdk = await ec2Sdk();
  const id = instance.InstanceId ?? '';
  const state = instance.State?.Name ?? 'pending';
  if (state === 'terminated' || state === 'shutting-down')
    throw new Error(`server ${id} is ${state}: it cannot be resized`);
  if (instance.InstanceType === type) {
    if (state === 'running') return;
    if (state === 'stopped') await ec2.send(new sdk.StartInstancesCommand({ InstanceIds: [id] }));
    throw new ResizePending(`server ${id} is ${state === 'stopped' ? 'starting' : state} as ${type}`);
  }
  if (state === 'stopped') {
    await ec2.send(new sdk.ModifyInstanceAttributeCommand({ InstanceId: id, InstanceType: { Value: type } }));
    await ec2.send(new sdk.StartInstancesCommand({ InstanceIds: [id] }));
    throw new ResizePending(`server ${id} is starting as ${type}`);
  }
  if (state === 'running' || state === 'pending')
    await ec2.send(new sdk.StopInstancesCommand({ InstanceIds: [id] }));
  throw new ResizePending(`server ${id} is stopping to become ${type}`);
}

/**
 * EBS's online extend: ModifyVolume once, then done when the modification reaches `optimizing`
 * (the new size is usable from then on, AWS says) or `completed`. A failed modification is an
 * error with EBS's own message.
 */
export async function extendDataVolume(
  ec2: EC2Client,
  instance: Instance,
  dataDevice: string,
  sizeGb: number,
): Promise<void> {
  const sdk = await ec2Sdk();
  const volumeId = instance.BlockDeviceMappings?.find((m) => m.DeviceName === dataDevice)?.Ebs?.VolumeId;
  if (!volumeId) throw new Error(`server ${instance.InstanceId} has no data volume at ${dataDevice}`);
  const modifications = await ec2
    .send(new sdk.DescribeVolumesModificationsCommand({ VolumeIds: [volumeId] }))
    .then((out) => out.VolumesModifications ?? [])
    .catch((err: unknown) => {
      // A volume never modified: EC2 answers NotFound rather than an empty list.
      if ((err as Error).name === 'InvalidVolumeModification.NotFound') return [];
      throw err;
    });
  const latest = modifications
    .filter((m) => (m.TargetSize ?? 0) >= sizeGb)
    .sort((a, b) => (b.StartTime?.getTime() ?? 0) - (a.StartTime?.getTime() ?? 0))[0];
  switch (latest?.ModificationState) {
    case 'optimizing':
    case 'completed':
      return;
    case 'modifying':
      throw new ResizePending(`volume ${volumeId} is being extended to ${latest.TargetSize} GB`);
    case 'failed':
      throw new Error(`extending volume ${volumeId} failed: ${latest.StatusMessage ?? 'no reason given'}`);
  }
  const volume = (await ec2.send(new sdk.DescribeVolumesCommand({ VolumeIds: [volumeId] }))).Volumes?.[0];
  if ((volume?.Size ?? 0) > sizeGb)
    throw new RangeError(`volume ${volumeId} is ${volume?.Size} GB; it cannot shrink to ${sizeGb} GB`);
  if (volume?.Size === sizeGb) return;
  await ec2.send(new sdk.ModifyVolumeCommand({ VolumeId: volumeId, Size: sizeGb }));
  throw new ResizePending(`volume ${volumeId} is being extended to ${sizeGb} GB`);
}

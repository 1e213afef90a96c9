import {
  EC2Client,
  EC2ServiceException,
  type Instance,
  type ServiceInputTypes,
  type ServiceOutputTypes,
  type VolumeModification,
} from '@aws-sdk/client-ec2';
import { SQSClient } from '@aws-sdk/client-sqs';
import { SSMClient } from '@aws-sdk/client-ssm';
import { describe, expect, it } from 'vitest';
import { ResizePending } from '../../lib/compute/driver.ts';
import { Ec2ComputeDriver } from '../../lib/compute/ec2.ts';

// Resize flavor and resize volume on EC2, against a fake EC2 that keeps the instance's and the
// volume's state: each call of the driver takes one step and says ResizePending until done, as
// the workflow's retried step sees it.

interface Call {
  command: string;
  input: ServiceInputTypes;
}

/** A real EC2Client whose requests stop at the first middleware step (as compute-ec2.test.ts). */
function fakeEc2(answer: (call: Call) => ServiceOutputTypes) {
  const calls: Call[] = [];
  const client = new EC2Client({
    region: 'eu-west-1',
    credentials: { accessKeyId: 'x', secretAccessKey: 'x' },
  });
  client.middlewareStack.add(
    (_next, context) => async (args) => {
      const call = { command: context.commandName ?? '', input: args.input as ServiceInputTypes };
      calls.push(call);
      return { output: answer(call), response: {} };
    },
    { step: 'initialize', name: 'fakeEc2' },
  );
  return { client, calls };
}

/** SSM and SQS answer nothing here: resize never touches the key parameter or the queue. */
const credentials = { accessKeyId: 'x', secretAccessKey: 'x' };
const quiet = () => ({
  ssm: new SSMClient({ region: 'eu-west-1', credentials }),
  sqs: new SQSClient({ region: 'eu-west-1', credentials }),
});

/** One EC2 instance with its data volume, moving through states as a real one would (one step per call). */
function fakeCloud(type = 't4g.nano') {
  const instance: Instance = {
    InstanceId: 'i-0abc',
    InstanceType: type as Instance['InstanceType'],
    State: { Name: 'running', Code: 16 },
    Tags: [{ Key: 'troveless:instance_id', Value: 'inst-1' }],
    BlockDeviceMappings: [
      { DeviceName: '/dev/xvda', Ebs: { VolumeId: 'vol-root' } },
      { DeviceName: '/dev/sdf', Ebs: { VolumeId: 'vol-data' } },
    ],
  };
  const volume = { size: 5, modifications: [] as VolumeModification[] };
  const fake = fakeEc2(({ command, input }) => {
    const i = input as Record<string, unknown>;
    const state = (name: NonNullable<Instance['State']>['Name']) => {
      instance.State = { Name: name };
    };
    switch (command) {
      case 'DescribeInstancesCommand': {
        const out = { Reservations: [{ Instances: [structuredClone(instance)] }], $metadata: {} };
        // Transitions finish between two looks, as they do between two retries of the step.
        if (instance.State?.Name === 'stopping') state('stopped');
        else if (instance.State?.Name === 'pending') state('running');
        return out;
      }
      case 'StopInstancesCommand':
        state('stopping');
        return { $metadata: {} };
      case 'StartInstancesCommand':
        state('pending');
        return { $metadata: {} };
      case 'ModifyInstanceAttributeCommand':
        if (instance.State?.Name !== 'stopped') throw new Error('IncorrectInstanceState');
        instance.InstanceType = (i.InstanceType as { Value: string }).Value as Instance['InstanceType'];
        return { $metadata: {} };
      case 'DescribeVolumesModificationsCommand': {
        if (!volume.modifications.length)
          throw new EC2ServiceException({
            name: 'InvalidVolumeModification.NotFound',
            $fault: 'client',
            $metadata: { httpStatusCode: 400 },
            message: 'Modification for volume vol-data does not exist.',
          });
        const out = { VolumesModifications: structuredClone(volume.modifications), $metadata: {} };
        for (const m of volume.modifications)
          if (m.ModificationState === 'modifying') {
            m.ModificationState = 'optimizing';
            volume.size = m.TargetSize ?? volume.size;
          }
        return out;
      }
      case 'DescribeVolumesCommand':
        return { Volumes: [{ VolumeId: 'vol-data', Size: volume.size }], $metadata: {} };
      case 'ModifyVolumeCommand':
        volume.modifications.push({
          VolumeId: 'vol-data',
          TargetSize: i.Size as number,
          ModificationState: 'modifying',
          StartTime: new Date(),
        });
        return { $metadata: {} };
    }
    throw new Error(`unexpected ${command}`);
  });
  const driver = new Ec2ComputeDriver({
    imageId: 'ami-1',
    keyParameterPrefix: '/troveless/test/guest-keys',
    client: fake.client,
    ...quiet(),
  });
  return { driver, calls: fake.calls, instance, volume };
}

/** Calls `step` as the workflow's Retry on Troveless.ResizePending does, until it is done. */
async function untilDone(step: () => Promise<void>): Promise<number> {
  for (let attempt = 1; attempt <= 10; attempt++) {
    try {
      await step();
      return attempt;
    } catch (err) {
      if (!(err instanceof ResizePending)) throw err;
      expect((err as Error).name).toBe('Troveless.ResizePending');
    }
  }
  throw new Error('never done');
}

const mutations = (calls: Call[]) => calls.map((c) => c.command).filter((c) => !c.startsWith('Describe'));

describe('Ec2ComputeDriver resize', () => {
  it('stops the instance, changes its type while stopped, starts it, and is done once it runs', async () => {
    const { driver, calls, instance } = fakeCloud('t4g.nano');
    const attempts = await untilDone(() => driver.resize('i-0abc', { id: '8', ram: 1024, vcpus: 1 }));
    expect(attempts).toBeGreaterThan(1);
    expect(instance.InstanceType).toBe('t4g.micro');
    expect(instance.State?.Name).toBe('running');
    expect(mutations(calls)).toEqual([
      'StopInstancesCommand',
      'ModifyInstanceAttributeCommand',
      'StartInstancesCommand',
    ]);
    const modify = calls.find((c) => c.command === 'ModifyInstanceAttributeCommand')?.input;
    expect(modify).toEqual({ InstanceId: 'i-0abc', InstanceType: { Value: 't4g.micro' } });
    // Asked again (a retried step after a crash): nothing more is done.
    const before = calls.length;
    await driver.resize('i-0abc', { id: '8', ram: 1024, vcpus: 1 });
    expect(mutations(calls.slice(before))).toEqual([]);
  });

  it('reverts the same way, and starts an instance left stopped with the right type', async () => {
    const { driver, instance } = fakeCloud('t4g.micro');
    instance.State = { Name: 'stopped' };
    await untilDone(() => driver.resize('i-0abc', { id: '8', ram: 1024, vcpus: 1 }));
    expect(instance.State?.Name).toBe('running');
    await untilDone(() => driver.resize('i-0abc', { id: '7', ram: 512, vcpus: 1 }));
    expect(instance.InstanceType).toBe('t4g.nano');
  });

  it('refuses a terminated instance at once (no pending loop)', async () => {
    const { driver, instance } = fakeCloud();
    instance.State = { Name: 'terminated' };
    await expect(driver.resize('i-0abc', { id: '8', ram: 1024, vcpus: 1 })).rejects.toThrow(
      /terminated: it cannot be resized/,
    );
  });
});

describe('Ec2ComputeDriver extendVolume', () => {
  it('modifies the data volume once and is done when EBS is optimizing', async () => {
    const { driver, calls, volume } = fakeCloud();
    const attempts = await untilDone(() => driver.extendVolume('i-0abc', 8));
    expect(attempts).toBe(3);
    expect(volume.size).toBe(8);
    const modify = calls.filter((c) => c.command === 'ModifyVolumeCommand');
    expect(modify.map((c) => c.input)).toEqual([{ VolumeId: 'vol-data', Size: 8 }]);
    await driver.extendVolume('i-0abc', 8);
    expect(calls.filter((c) => c.command === 'ModifyVolumeCommand')).toHaveLength(1);
  });

  it('never shrinks, and reports a failed modification with EBS’s reason', async () => {
    const { driver, volume } = fakeCloud();
    await expect(driver.extendVolume('i-0abc', 3)).rejects.toBeInstanceOf(RangeError);
    volume.modifications.push({
      VolumeId: 'vol-data',
      TargetSize: 9,
      ModificationState: 'failed',
      StatusMessage: 'Volume modification rate exceeded',
      StartTime: new Date(),
    });
    await expect(driver.extendVolume('i-0abc', 9)).rejects.toThrow(/rate exceeded/);
  });
});

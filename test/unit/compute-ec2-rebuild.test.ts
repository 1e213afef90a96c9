import {
  EC2Client,
  EC2ServiceException,
  type ReplaceRootVolumeTask,
  type ServiceInputTypes,
  type ServiceOutputTypes,
} from '@aws-sdk/client-ec2';
import { SQSClient } from '@aws-sdk/client-sqs';
import { SSMClient } from '@aws-sdk/client-ssm';
import { describe, expect, it } from 'vitest';
import { ImageNotFound, RebuildPending } from '../../lib/compute/driver.ts';
import { Ec2ComputeDriver } from '../../lib/compute/ec2.ts';

// Trove's mgmt rebuild on EC2: a replace-root-volume task from the AMI (the data volume stays
// attached), against a fake EC2 that keeps its tasks and moves each one step per look, as the
// workflow's step sees it between two retries on Troveless.RebuildPending.

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

const ec2Error = (name: string, message: string) =>
  new EC2ServiceException({ name, $fault: 'client', $metadata: { httpStatusCode: 400 }, message });

const credentials = { accessKeyId: 'x', secretAccessKey: 'x' };

/** EC2 with one image and its replace-root-volume tasks; `fail` makes the next task fail. */
function fakeCloud({ fail = false } = {}) {
  const images = new Set(['ami-0123456789abcdef0']);
  const tasks = new Map<string, ReplaceRootVolumeTask>();
  const byToken = new Map<string, string>();
  const steps: NonNullable<ReplaceRootVolumeTask['TaskState']>[] = fail
    ? ['pending', 'in-progress', 'failing', 'failed']
    : ['pending', 'in-progress', 'succeeded'];
  const fake = fakeEc2(({ command, input }) => {
    const i = input as Record<string, unknown>;
    switch (command) {
      case 'DescribeImagesCommand': {
        const [id] = i.ImageIds as string[];
        if (!id?.startsWith('ami-')) throw ec2Error('InvalidAMIID.Malformed', `Invalid id: "${id}"`);
        if (!images.has(id)) throw ec2Error('InvalidAMIID.NotFound', `The image id '[${id}]' does not exist`);
        return { Images: [{ ImageId: id, State: 'available' }], $metadata: {} };
      }
      case 'CreateReplaceRootVolumeTaskCommand': {
        if (!images.has(i.ImageId as string))
          throw ec2Error('InvalidAMIID.NotFound', `The image id '[${i.ImageId}]' does not exist`);
        // EC2's idempotency: the same token answers with the task it started.
        const token = i.ClientToken as string | undefined;
        const known = token ? byToken.get(token) : undefined;
        const id = known ?? `replacevol-${tasks.size + 1}`;
        if (!known) {
          tasks.set(id, {
            ReplaceRootVolumeTaskId: id,
            InstanceId: i.InstanceId as string,
            TaskState: 'pending',
          });
          if (token) byToken.set(token, id);
        }
        return { ReplaceRootVolumeTask: structuredClone(tasks.get(id)), $metadata: {} };
      }
      case 'DescribeReplaceRootVolumeTasksCommand': {
        const [id] = i.ReplaceRootVolumeTaskIds as string[];
        const task = tasks.get(id ?? '');
        const out = { ReplaceRootVolumeTasks: task ? [structuredClone(task)] : [], $metadata: {} };
        // The task moves on between two looks, as it does between two retries of the step.
        if (task)
          task.TaskState = steps[Math.min(steps.indexOf(task.TaskState ?? 'pending') + 1, steps.length - 1)];
        return out;
      }
    }
    throw new Error(`unexpected ${command}`);
  });
  const driver = new Ec2ComputeDriver({
    imageId: 'ami-1',
    keyParameterPrefix: '/troveless/test/guest-keys',
    client: fake.client,
    ssm: new SSMClient({ region: 'eu-west-1', credentials }),
    sqs: new SQSClient({ region: 'eu-west-1', credentials }),
  });
  return { driver, calls: fake.calls, tasks };
}

/** Calls `step` as the workflow's Retry on Troveless.RebuildPending does, until it is done. */
async function untilDone(step: () => Promise<void>): Promise<number> {
  for (let attempt = 1; attempt <= 10; attempt++) {
    try {
      await step();
      return attempt;
    } catch (err) {
      if (!(err instanceof RebuildPending)) throw err;
      expect((err as Error).name).toBe('Troveless.RebuildPending');
    }
  }
  throw new Error('never done');
}

describe('Ec2ComputeDriver rebuild', () => {
  it('replaces the root volume from the image once, and is done when the task succeeded', async () => {
    const { driver, calls, tasks } = fakeCloud();
    const attempts = await untilDone(() => driver.rebuild('i-0abc', 'ami-0123456789abcdef0', 'token-1'));
    expect(attempts).toBe(3);
    // One task for all the step's calls: each repeated the request's token.
    expect([...tasks.values()]).toEqual([
      { ReplaceRootVolumeTaskId: 'replacevol-1', InstanceId: 'i-0abc', TaskState: 'succeeded' },
    ]);
    const creates = calls.filter((c) => c.command === 'CreateReplaceRootVolumeTaskCommand');
    expect(creates).toHaveLength(3);
    for (const c of creates)
      expect(c.input).toEqual({
        InstanceId: 'i-0abc',
        ImageId: 'ami-0123456789abcdef0',
        DeleteReplacedRootVolume: true,
        ClientToken: 'token-1',
      });
    // Nothing but the root: no volume detached, no instance stopped or started.
    expect(new Set(calls.map((c) => c.command))).toEqual(
      new Set(['CreateReplaceRootVolumeTaskCommand', 'DescribeReplaceRootVolumeTasksCommand']),
    );
  });

  it('says which task failed, with EC2’s state', async () => {
    const { driver } = fakeCloud({ fail: true });
    await expect(untilDone(() => driver.rebuild('i-0abc', 'ami-0123456789abcdef0', 't'))).rejects.toThrow(
      /replacing the root volume of i-0abc with image ami-0123456789abcdef0 failed \(task replacevol-1: failed\)/,
    );
  });

  it('answers Nova’s ImageNotFound for an image EC2 does not have, starting nothing', async () => {
    const { driver, tasks } = fakeCloud();
    const refused = driver.rebuild('i-0abc', 'ami-00000000', 't');
    await expect(refused).rejects.toBeInstanceOf(ImageNotFound);
    await expect(refused).rejects.toThrow('Image ami-00000000 could not be found.');
    expect(tasks.size).toBe(0);
  });

  it('tells an available AMI from a missing or malformed one', async () => {
    const { driver } = fakeCloud();
    expect(await driver.imageExists('ami-0123456789abcdef0')).toBe(true);
    expect(await driver.imageExists('ami-00000000')).toBe(false);
    expect(await driver.imageExists('6b1e8f0a-4c2d-8a3e-9f10-0123456789ab')).toBe(false);
  });
});

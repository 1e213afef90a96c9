import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { ListMultipartUploadsCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { ListStateMachinesCommand, SFNClient } from '@aws-sdk/client-sfn';
import { ListQueuesCommand, SQSClient } from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient, GetCommand, QueryCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { expect } from 'vitest';
import { agentLogPath } from '../../local/compute/records.ts';
import { waitUntil } from '../../local/wait.ts';
import { call, cloud, type Login } from './helpers.ts';
import { type InstanceView, showInstance } from './instance-helpers.ts';
import { processesMentioning } from './processes.ts';

// What a guest runs on the local compute host, and the check that an instance (and its backup)
// left nothing behind once deleted: no process, mount, directory, queue, object, upload or item.
// Shared by the fault-injection and stuck-record tests.

const aws = {
  region: 'us-east-1',
  credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
};
export const s3 = () =>
  new S3Client({
    ...aws,
    endpoint: cloud().endpoints.s3,
    forcePathStyle: true,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
export const sqs = () => new SQSClient({ ...aws, endpoint: cloud().endpoints.sqs });
export const sfn = () => new SFNClient({ ...aws, endpoint: cloud().endpoints.stepfunctions });
export const dynamo = () =>
  DynamoDBDocumentClient.from(new DynamoDBClient({ ...aws, endpoint: cloud().endpoints.dynamodb }));

export const BACKUP_BUCKET = 'troveless-local-backups';

/** The compute host answers only with its bearer secret, kept in the cloud's state dir (root's). */
const computeHostAuth = () =>
  `Bearer ${readFileSync(join(cloud().stateDir, 'compute', 'host-secret'), 'utf8').trim()}`;

/** Nova's os-start on the local compute host, as an operator brings a stopped (fenced) server back. */
export async function startServer(serverId: string) {
  const res = await fetch(`${cloud().endpoints.compute}/servers/${serverId}/action`, {
    method: 'POST',
    headers: { authorization: computeHostAuth(), 'content-type': 'application/json' },
    body: JSON.stringify({ 'os-start': null }),
  });
  expect(res.status, await res.text()).toBe(202);
}

/** A server's status on the local compute host (ACTIVE, SHUTOFF...). */
export async function serverStatus(serverId: string): Promise<string> {
  const res = await fetch(`${cloud().endpoints.compute}/servers/${serverId}`, {
    headers: { authorization: computeHostAuth() },
  });
  return ((await res.json()) as { status: string }).status;
}

/** Every server the compute host runs for the instance (a duplicated launch would show two). */
export async function serversOf(instanceId: string): Promise<{ id: string }[]> {
  const res = await fetch(`${cloud().endpoints.compute}/servers?instance_id=${instanceId}`, {
    headers: { authorization: computeHostAuth() },
  });
  if (res.status !== 200) throw new Error(`compute host: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { servers: { id: string }[] }).servers;
}

/** The local cloud's guest image (the agent bundle), as the compute host lists it (Glance's list). */
export async function localGuestImage(): Promise<string> {
  const res = await fetch(`${cloud().endpoints.compute}/images`, {
    headers: { authorization: computeHostAuth() },
  });
  if (res.status !== 200) throw new Error(`compute host: ${res.status} ${await res.text()}`);
  const [image] = ((await res.json()) as { images: { id: string }[] }).images;
  if (!image) throw new Error('the compute host has no image');
  return image.id;
}

export async function serverIdOf(instanceId: string): Promise<string | undefined> {
  return (await serversOf(instanceId))[0]?.id;
}

export const baseDirOf = (serverId: string) => join(cloud().stateDir, 'compute', serverId);
export const agentLogOf = (serverId: string) => agentLogPath(join(cloud().stateDir, 'compute'), serverId);

/** The guest's agent and engine processes, as the local compute host laid them out. */
export function guestProcesses(baseDir: string): { agent: number[]; engine: number[] } {
  const all = processesMentioning(baseDir).filter((pid) => pid !== process.pid);
  const agent = processesMentioning(join(baseDir, 'agent.json'));
  return { agent, engine: all.filter((pid) => !agent.includes(pid)) };
}

export function signal(pids: number[], sig: NodeJS.Signals): number {
  let hit = 0;
  for (const pid of pids) {
    try {
      process.kill(pid, sig);
      hit++;
    } catch {
      // exited meanwhile
    }
  }
  return hit;
}

export async function viewOf(who: Login, id: string): Promise<InstanceView | 'gone'> {
  const res = await showInstance(who, id);
  if (res.status === 404) return 'gone';
  if (res.status !== 200) throw new Error(`show ${id}: ${res.status} ${res.text}`);
  return res.json?.instance as InstanceView;
}

/** The ARN of the execution named `name` of the local state machine `workflow`. */
export async function executionArn(workflow: string, name: string): Promise<string> {
  const machines = await sfn().send(new ListStateMachinesCommand({}));
  const machine = machines.stateMachines?.find((m) => m.name?.endsWith(`-${workflow}`));
  if (!machine?.stateMachineArn) throw new Error(`no state machine ${workflow}`);
  return `${machine.stateMachineArn.replace(':stateMachine:', ':execution:')}:${name}`;
}

/** Deletes what a test made and checks that nothing of it is left anywhere. */
export async function deleteAndCheck(who: Login, id: string, backupId?: string, goneWithinMs = 180_000) {
  const serverId = await serverIdOf(id);
  if ((await viewOf(who, id)) !== 'gone') {
    const res = await call('DELETE', `/v1.0/${who.projectId}/instances/${id}`, who.token);
    expect([202, 404], res.text).toContain(res.status);
  }
  await waitUntil(
    `instance ${id} gone`,
    async () => ((await viewOf(who, id)) === 'gone' ? true : undefined),
    {
      timeoutMs: goneWithinMs,
      intervalMs: 1000,
    },
  );
  if (backupId) {
    const res = await call('DELETE', `/v1.0/${who.projectId}/backups/${backupId}`, who.token);
    expect([202, 404], res.text).toContain(res.status);
  }
  await expectNothingLeft(id, who.projectId, serverId);
}

/** No process, mount, directory, queue, object, upload or item of instance `id` is left. */
export async function expectNothingLeft(id: string, projectId: string, serverId?: string) {
  if (serverId) {
    const baseDir = baseDirOf(serverId);
    expect(processesMentioning(baseDir).filter((pid) => pid !== process.pid)).toEqual([]);
    expect(existsSync(baseDir)).toBe(false);
    expect(readFileSync('/proc/mounts', 'utf8')).not.toContain(baseDir);
  }
  const queues = await sqs().send(new ListQueuesCommand({ QueueNamePrefix: `troveless-local-guest-${id}` }));
  expect(queues.QueueUrls ?? []).toEqual([]);
  const prefix = `${projectId}/${id}/`;
  const objects = await s3().send(new ListObjectsV2Command({ Bucket: BACKUP_BUCKET, Prefix: prefix }));
  expect(objects.Contents ?? []).toEqual([]);
  const uploads = await s3().send(new ListMultipartUploadsCommand({ Bucket: BACKUP_BUCKET, Prefix: prefix }));
  expect(uploads.Uploads ?? []).toEqual([]);
  const items = await dynamo().send(
    new QueryCommand({
      TableName: 'troveless-local-instances',
      IndexName: 'by-id',
      KeyConditionExpression: 'id = :id',
      ExpressionAttributeValues: { ':id': id },
    }),
  );
  expect(items.Items ?? []).toEqual([]);
  // Its certificate's item went with it (lib/instances/certificate-store.ts).
  const certificate = await dynamo().send(
    new GetCommand({ TableName: 'troveless-local-operations', Key: { id: `ssl#${id}` } }),
  );
  expect(certificate.Item).toBeUndefined();
  // So did its doorbell's (lib/guest/doorbell.ts), with its queue.
  const doorbell = await dynamo().send(
    new GetCommand({ TableName: 'troveless-local-operations', Key: { id: `doorbell#${id}` } }),
  );
  expect(doorbell.Item).toBeUndefined();
  const backups = await dynamo().send(
    new ScanCommand({
      TableName: 'troveless-local-backups',
      FilterExpression: 'instance_id = :id',
      ExpressionAttributeValues: { ':id': id },
    }),
  );
  expect(backups.Items ?? []).toEqual([]);
}

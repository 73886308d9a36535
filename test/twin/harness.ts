// Shared steps of the twin's own tests: SDK clients aimed at a twin, a helper instance that is
// running with its SSM agent online, and commands run on it to completion.
import { EC2Client, DescribeImagesCommand, RunInstancesCommand, type RunInstancesCommandInput } from '@aws-sdk/client-ec2';
import { ECRClient } from '@aws-sdk/client-ecr';
import {
  AddRoleToInstanceProfileCommand, AttachRolePolicyCommand, CreateInstanceProfileCommand, CreateRoleCommand, IAMClient, PutRolePolicyCommand,
} from '@aws-sdk/client-iam';
import { S3Client } from '@aws-sdk/client-s3';
import {
  DescribeInstanceInformationCommand, GetCommandInvocationCommand, SendCommandCommand, SSMClient, type GetCommandInvocationCommandOutput,
} from '@aws-sdk/client-ssm';
import { STSClient } from '@aws-sdk/client-sts';
import { setTimeout as sleep } from 'node:timers/promises';
import type { RunningTwin } from '../support/twin.js';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

export function clientsFor(twin: RunningTwin, maxAttempts = 3) {
  const config = {
    region: twin.env.AWS_REGION,
    endpoint: twin.url,
    credentials: { accessKeyId: twin.env.AWS_ACCESS_KEY_ID, secretAccessKey: twin.env.AWS_SECRET_ACCESS_KEY },
    maxAttempts,
  };
  const clients = {
    ec2: new EC2Client(config),
    iam: new IAMClient(config),
    ssm: new SSMClient(config),
    s3: new S3Client(config),
    ecr: new ECRClient(config),
    sts: new STSClient(config),
  };
  return { ...clients, destroy: () => Object.values(clients).forEach((c) => c.destroy()) };
}

export type Clients = ReturnType<typeof clientsFor>;

/** Polls `probe` until it returns something other than undefined. */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

export async function helperImageId(clients: Clients, architecture = 'x86_64'): Promise<string> {
  const { Images } = await clients.ec2.send(new DescribeImagesCommand({
    Owners: ['amazon'],
    Filters: [{ Name: 'name', Values: ['al2023-ami-2023.*'] }, { Name: 'architecture', Values: [architecture] }],
  }));
  return Images![0].ImageId!;
}

const TRUST = JSON.stringify({
  Version: '2012-10-17',
  Statement: [{ Effect: 'Allow', Principal: { Service: 'ec2.amazonaws.com' }, Action: 'sts:AssumeRole' }],
});

/** A role the SSM agent can register with, plus `actions` inline, in a profile of the same name. */
export async function createHelperProfile(clients: Clients, name: string, actions: string[] = []): Promise<void> {
  await clients.iam.send(new CreateRoleCommand({ RoleName: name, AssumeRolePolicyDocument: TRUST }));
  await clients.iam.send(new AttachRolePolicyCommand({ RoleName: name, PolicyArn: 'arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore' }));
  if (actions.length > 0) {
    await clients.iam.send(new PutRolePolicyCommand({
      RoleName: name,
      PolicyName: 'extra',
      PolicyDocument: JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: actions, Resource: '*' }] }),
    }));
  }
  await clients.iam.send(new CreateInstanceProfileCommand({ InstanceProfileName: name }));
  await clients.iam.send(new AddRoleToInstanceProfileCommand({ InstanceProfileName: name, RoleName: name }));
}

/** RunInstances, retrying IAM's propagation error with the same token, as a careful client does. */
export async function runInstance(clients: Clients, input: Omit<RunInstancesCommandInput, 'MinCount' | 'MaxCount'>): Promise<string> {
  const token = input.ClientToken ?? `token-${Math.random().toString(16).slice(2)}`;
  return waitFor('the instance profile to propagate', async () => {
    try {
      const out = await clients.ec2.send(new RunInstancesCommand({ MinCount: 1, MaxCount: 1, ...input, ClientToken: token }));
      return out.Instances![0].InstanceId!;
    } catch (error) {
      if ((error as Error).message.includes('Invalid IAM Instance Profile')) return undefined;
      throw error;
    }
  });
}

export async function waitOnline(clients: Clients, instanceId: string): Promise<void> {
  await waitFor(`${instanceId} to be Online in SSM`, async () => {
    const { InstanceInformationList } = await clients.ssm.send(new DescribeInstanceInformationCommand({ Filters: [{ Key: 'InstanceIds', Values: [instanceId] }] }));
    return InstanceInformationList?.[0]?.PingStatus === 'Online' ? true : undefined;
  });
}

/** Sends AWS-RunShellScript and waits until the invocation reaches a final status. */
export async function runScript(
  clients: Clients,
  instanceId: string,
  commands: string[],
  options: { executionTimeout?: number; bucket?: string; prefix?: string } = {},
): Promise<GetCommandInvocationCommandOutput> {
  const { Command } = await clients.ssm.send(new SendCommandCommand({
    InstanceIds: [instanceId],
    DocumentName: 'AWS-RunShellScript',
    Parameters: { commands, ...(options.executionTimeout ? { executionTimeout: [String(options.executionTimeout)] } : {}) },
    OutputS3BucketName: options.bucket,
    OutputS3KeyPrefix: options.prefix,
  }));
  return finalInvocation(clients, Command!.CommandId!, instanceId);
}

export async function finalInvocation(clients: Clients, commandId: string, instanceId: string): Promise<GetCommandInvocationCommandOutput> {
  return waitFor(`command ${commandId} to finish`, async () => {
    try {
      const invocation = await clients.ssm.send(new GetCommandInvocationCommand({ CommandId: commandId, InstanceId: instanceId }));
      return ['Pending', 'InProgress', 'Delayed'].includes(invocation.Status!) ? undefined : invocation;
    } catch (error) {
      if ((error as Error).name === 'InvocationDoesNotExist') return undefined;
      throw error;
    }
  }, 60_000);
}

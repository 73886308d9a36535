// A replay of the original tool's orchestration, for the control-plane benchmark: every step in
// sequence, each wait a fixed-interval poll (5 s for volumes, 10 s for the instance, SSM and the
// command, multiplied by the benchmark's time scale). It sends the very command ami2docker sends
// (same rendering, same spec defaults), so the two differ only in how they drive AWS.
//
//   node dist/bench/control-plane/original.js --ami-name NAME --instance-profile P --ecr-registry REPO \
//     --volume-poll SECONDS --instance-poll SECONDS
//
// AWS endpoint, region and credentials come from the SDK's standard environment. Prints one JSON
// line per milestone on stdout ({"type":"mark","name":...,"at":ISO}); exits non-zero on failure.
import {
  AttachVolumeCommand,
  CreateVolumeCommand,
  DeleteVolumeCommand,
  DescribeImagesCommand,
  DescribeInstancesCommand,
  DescribeSubnetsCommand,
  DescribeVolumesCommand,
  RunInstancesCommand,
  TerminateInstancesCommand,
  type Image,
} from '@aws-sdk/client-ec2';
import { DescribeRepositoriesCommand } from '@aws-sdk/client-ecr';
import { DescribeInstanceInformationCommand, GetCommandInvocationCommand, SendCommandCommand } from '@aws-sdk/client-ssm';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { createClients, type AwsClients } from '../../src/effects/clients.js';
import { parseResult } from '../../src/effects/commands.js';
import { hasAwsCode } from '../../src/effects/errors.js';
import { defaultInstanceType } from '../../src/effects/images.js';
import { verifyImage } from '../../src/effects/registry.js';
import { renderConversionCommand } from '../../src/effects/remote-command.js';
import { ATTACH_DEVICE } from '../../src/machine/names.js';
import { normalisePlan } from '../../src/machine/plan.js';
import type { Architecture, ConversionSpec } from '../../src/machine/types.js';

export type MarkName = 'ready' | 'attached' | 'commandDone' | 'image' | 'done';

function mark(name: MarkName, data: Record<string, unknown> = {}): void {
  process.stdout.write(`${JSON.stringify({ type: 'mark', name, at: new Date().toISOString(), ...data })}\n`);
}

function options() {
  const { values } = parseArgs({
    options: {
      'ami-name': { type: 'string' },
      'instance-profile': { type: 'string' },
      'ecr-registry': { type: 'string' },
      'volume-poll': { type: 'string', default: '5' },
      'instance-poll': { type: 'string', default: '10' },
    },
  });
  for (const name of ['ami-name', 'instance-profile', 'ecr-registry'] as const) {
    if (!values[name]) throw new Error(`--${name} is required`);
  }
  return {
    amiName: values['ami-name']!,
    instanceProfile: values['instance-profile']!,
    repository: values['ecr-registry']!,
    volumePollMs: Number(values['volume-poll']) * 1000,
    instancePollMs: Number(values['instance-poll']) * 1000,
  };
}

/** The original's waits: ask, and if the answer is not yet the wanted one, sleep a fixed interval. */
async function pollEvery<T>(intervalMs: number, what: string, check: () => Promise<T | undefined>, timeoutMs = 10 * 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(intervalMs);
  }
}

async function findImage(clients: AwsClients, filters: { Name: string; Values: string[] }[], owners?: string[]): Promise<Image> {
  const { Images } = await clients.ec2.send(new DescribeImagesCommand({ Filters: filters, ...(owners ? { Owners: owners } : {}) }));
  const image = [...(Images ?? [])].sort((a, b) => (b.CreationDate ?? '').localeCompare(a.CreationDate ?? ''))[0];
  if (!image?.ImageId) throw new Error(`no image matches ${JSON.stringify(filters)}`);
  return image;
}

async function main(): Promise<void> {
  mark('ready');
  const opts = options();
  const clients = createClients({ region: process.env.AWS_REGION ?? 'us-east-1' });
  const { ec2, ssm, ecr } = clients;
  // The conversion's inputs take ami2docker's defaults, so the remote work is the same.
  const plan = normalisePlan({ amiName: opts.amiName, region: clients.region });

  // 1. Look up the AMI, the helper AMI, the subnet (its AZ decides the volume's) and the repository.
  const ami = await findImage(clients, [{ Name: 'name', Values: [opts.amiName] }]);
  const architecture = ami.Architecture as Architecture;
  const rootMapping = ami.BlockDeviceMappings?.find((m) => m.DeviceName === ami.RootDeviceName);
  const snapshotId = rootMapping?.Ebs?.SnapshotId;
  if (!snapshotId) throw new Error(`AMI ${ami.ImageId} has no root snapshot`);
  const helper = await findImage(clients, [{ Name: 'name', Values: ['al2023-ami-2023.*'] }, { Name: 'architecture', Values: [architecture] }], ['amazon']);
  const { Subnets } = await ec2.send(new DescribeSubnetsCommand({ Filters: [{ Name: 'default-for-az', Values: ['true'] }] }));
  const subnet = Subnets?.[0];
  if (!subnet?.SubnetId || !subnet.AvailabilityZone) throw new Error('no default subnet');
  const { repositories } = await ecr.send(new DescribeRepositoriesCommand({ repositoryNames: [opts.repository] }));
  const repositoryUri = repositories?.[0]?.repositoryUri;
  if (!repositoryUri) throw new Error(`repository ${opts.repository} not found`);

  // 2. The volume, and wait (5 s polls) until it is available.
  const { VolumeId: volumeId } = await ec2.send(new CreateVolumeCommand({
    SnapshotId: snapshotId,
    AvailabilityZone: subnet.AvailabilityZone,
    VolumeType: 'gp3',
  }));
  if (!volumeId) throw new Error('CreateVolume returned no id');
  const volumeState = async () => (await ec2.send(new DescribeVolumesCommand({ VolumeIds: [volumeId] }))).Volumes?.[0];
  await pollEvery(opts.volumePollMs, 'the volume', async () => ((await volumeState())?.State === 'available' ? true : undefined));

  // 3. The helper instance, and wait (10 s polls) until it runs.
  const launched = await ec2.send(new RunInstancesCommand({
    ImageId: helper.ImageId,
    InstanceType: defaultInstanceType(architecture) as never,
    MinCount: 1,
    MaxCount: 1,
    SubnetId: subnet.SubnetId,
    IamInstanceProfile: { Name: opts.instanceProfile },
  }));
  const instanceId = launched.Instances?.[0]?.InstanceId;
  if (!instanceId) throw new Error('RunInstances returned no instance');
  const instanceState = async () =>
    (await ec2.send(new DescribeInstancesCommand({ InstanceIds: [instanceId] }))).Reservations?.[0]?.Instances?.[0]?.State?.Name;
  await pollEvery(opts.instancePollMs, 'the instance', async () => ((await instanceState()) === 'running' ? true : undefined));

  // 4. SSM, polled every 10 s until the agent is online.
  await pollEvery(opts.instancePollMs, 'the SSM agent', async () => {
    const { InstanceInformationList } = await ssm.send(new DescribeInstanceInformationCommand({ Filters: [{ Key: 'InstanceIds', Values: [instanceId] }] }));
    return InstanceInformationList?.[0]?.PingStatus === 'Online' ? true : undefined;
  });

  // 5. Attach, polled every 5 s until attached.
  await ec2.send(new AttachVolumeCommand({ VolumeId: volumeId, InstanceId: instanceId, Device: ATTACH_DEVICE }));
  await pollEvery(opts.volumePollMs, 'the attachment', async () =>
    ((await volumeState())?.Attachments?.[0]?.State === 'attached' ? true : undefined));
  mark('attached');

  // 6. The conversion command, polled every 10 s until it ends; then the image is checked in ECR.
  const spec: ConversionSpec = {
    volumeId,
    device: ATTACH_DEVICE,
    repositoryUri,
    tags: [...plan.imageTags, ami.ImageId!],
    architecture,
    region: plan.region,
    ami: { id: ami.ImageId!, name: ami.Name!, creationDate: ami.CreationDate! },
    changes: plan.changes,
    excludes: plan.excludes,
    compression: plan.compression,
  };
  const { Command } = await ssm.send(new SendCommandCommand({
    InstanceIds: [instanceId],
    DocumentName: 'AWS-RunShellScript',
    Parameters: { commands: [renderConversionCommand(spec)], executionTimeout: [String(Math.max(60, plan.maxRuntimeSeconds - 120))] },
  }));
  const commandId = Command!.CommandId!;
  const invocation = await pollEvery(opts.instancePollMs, 'the command', async () => {
    try {
      const answer = await ssm.send(new GetCommandInvocationCommand({ CommandId: commandId, InstanceId: instanceId }));
      return ['Pending', 'InProgress', 'Delayed'].includes(answer.Status ?? '') ? undefined : answer;
    } catch (error) {
      if (hasAwsCode(error, 'InvocationDoesNotExist')) return undefined;
      throw error;
    }
  });
  mark('commandDone', { commandId, status: invocation.Status });
  if (invocation.Status !== 'Success') throw new Error(`the command ended ${invocation.Status}: ${invocation.StandardErrorContent}`);
  const result = parseResult(invocation.StandardOutputContent ?? '');
  if (!result) throw new Error('the command printed no result line');
  await verifyImage({ repositoryName: opts.repository, digest: result.digest, tags: result.tags }, { clients, report: () => undefined, pollSeconds: 1 });
  mark('image', { digest: result.digest });

  // 7. Teardown: terminate, wait (10 s polls) until terminated, delete the volume it leaves behind.
  await ec2.send(new TerminateInstancesCommand({ InstanceIds: [instanceId] }));
  await pollEvery(opts.instancePollMs, 'termination', async () => ((await instanceState()) === 'terminated' ? true : undefined));
  await pollEvery(opts.volumePollMs, 'the volume to detach', async () => ((await volumeState())?.State === 'available' ? true : undefined));
  await ec2.send(new DeleteVolumeCommand({ VolumeId: volumeId }));
  mark('done');
  clients.destroy();
}

main().catch((error: unknown) => {
  process.stderr.write(`original: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});

// Replays of the original tool's orchestration, for the control-plane benchmark. Every wait sleeps
// a fixed interval (5 s for volumes, 10 s for the instance, the SSM agent and the command; all
// multiplied by the benchmark's time scale) and then asks. Two orders:
//
// --order original: the order of the original tool's code.
//   1. the helper AMI by name; RunInstances with the given profile (no subnet: the default one);
//   2. the AMI by name; CreateVolume from its root snapshot in the instance's AZ;
//   3. every 5 s, DescribeVolumes and DescribeInstances until the volume is no longer `creating`
//      and the instance is `running`; AttachVolume, without waiting for the attachment;
//   4. every 10 s, DescribeInstanceInformation until the agent is Online;
//   5. SendCommand with the output bucket; every 10 s, until the invocation has ended (through
//      GetCommandInvocation: one request per poll, as its ListCommandInvocations); stdout and
//      stderr from the bucket;
//   6. TerminateInstances, without waiting; the volume is left behind, as the original left it.
//
// --order sequential: each step only once the one before it has completed: the lookups; the
//   volume, until available; the instance, until running; the agent, until Online; attach, until
//   attached; the command, as above; terminate, until terminated; delete the volume.
//
// In both, two things differ on purpose, so that the tools differ only in how they drive AWS: the
// command is the very one ami2docker sends (same rendering, same spec defaults), and the pushed
// image is then verified in ECR as ami2docker verifies it, which marks the "image" moment alike.
//
//   node dist/bench/control-plane/original.js --order original|sequential --ami-name NAME \
//     --instance-profile P --ecr-registry REPO --ssm-bucket B --volume-poll SECONDS --instance-poll SECONDS
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
import { GetObjectCommand } from '@aws-sdk/client-s3';
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
import { REPLAY_ORDERS, type ReplayOrder } from './orders.js';

export type MarkName = 'ready' | 'attached' | 'commandDone' | 'image' | 'done';

function mark(name: MarkName, data: Record<string, unknown> = {}): void {
  process.stdout.write(`${JSON.stringify({ type: 'mark', name, at: new Date().toISOString(), ...data })}\n`);
}

function options() {
  const { values } = parseArgs({
    options: {
      order: { type: 'string', default: 'original' },
      'ami-name': { type: 'string' },
      'instance-profile': { type: 'string' },
      'ecr-registry': { type: 'string' },
      'ssm-bucket': { type: 'string' },
      'volume-poll': { type: 'string', default: '5' },
      'instance-poll': { type: 'string', default: '10' },
    },
  });
  for (const name of ['ami-name', 'instance-profile', 'ecr-registry', 'ssm-bucket'] as const) {
    if (!values[name]) throw new Error(`--${name} is required`);
  }
  if (!(REPLAY_ORDERS as readonly string[]).includes(values.order!)) throw new Error(`--order must be one of ${REPLAY_ORDERS.join(', ')}`);
  return {
    order: values.order as ReplayOrder,
    amiName: values['ami-name']!,
    instanceProfile: values['instance-profile']!,
    repository: values['ecr-registry']!,
    bucket: values['ssm-bucket']!,
    volumePollMs: Number(values['volume-poll']) * 1000,
    instancePollMs: Number(values['instance-poll']) * 1000,
  };
}

type Options = ReturnType<typeof options>;

/** The original's waits: sleep a fixed interval, then ask; again until the answer is the wanted one. */
async function sleepThenPoll<T>(intervalMs: number, what: string, check: () => Promise<T | undefined>, timeoutMs = 10 * 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    await sleep(intervalMs);
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
  }
}

/** The steps both orders are made of. */
function steps(clients: AwsClients, opts: Options) {
  const { ec2, ssm, ecr, s3 } = clients;
  const plan = normalisePlan({ amiName: opts.amiName, region: clients.region });

  async function findImage(filters: { Name: string; Values: string[] }[], owners?: string[]): Promise<Image> {
    const { Images } = await ec2.send(new DescribeImagesCommand({ Filters: filters, ...(owners ? { Owners: owners } : {}) }));
    const image = [...(Images ?? [])].sort((a, b) => (b.CreationDate ?? '').localeCompare(a.CreationDate ?? ''))[0];
    if (!image?.ImageId) throw new Error(`no image matches ${JSON.stringify(filters)}`);
    return image;
  }
  const volumeOf = async (volumeId: string) =>
    (await ec2.send(new DescribeVolumesCommand({ Filters: [{ Name: 'volume-id', Values: [volumeId] }] }))).Volumes?.[0];
  const instanceOf = async (instanceId: string) =>
    (await ec2.send(new DescribeInstancesCommand({ InstanceIds: [instanceId] }))).Reservations?.[0]?.Instances?.[0];

  return {
    /** The AMI to convert, and its root snapshot. */
    async findAmi() {
      const ami = await findImage([{ Name: 'name', Values: [opts.amiName] }]);
      const snapshotId = ami.BlockDeviceMappings?.find((m) => m.DeviceName === ami.RootDeviceName)?.Ebs?.SnapshotId;
      if (!snapshotId) throw new Error(`AMI ${ami.ImageId} has no root snapshot`);
      return { ami, snapshotId };
    },

    /** A default subnet, to know the AZ before the helper exists. */
    async defaultSubnet(): Promise<{ subnetId: string; zone: string }> {
      const { Subnets } = await ec2.send(new DescribeSubnetsCommand({ Filters: [{ Name: 'default-for-az', Values: ['true'] }] }));
      const subnet = Subnets?.[0];
      if (!subnet?.SubnetId || !subnet.AvailabilityZone) throw new Error('no default subnet');
      return { subnetId: subnet.SubnetId, zone: subnet.AvailabilityZone };
    },

    /** The helper, from an x86_64 Amazon Linux AMI (the original's default was one). */
    async launch(subnetId?: string): Promise<{ instanceId: string; zone: string }> {
      const helper = await findImage([{ Name: 'name', Values: ['al2023-ami-2023.*'] }, { Name: 'architecture', Values: ['x86_64'] }], ['amazon']);
      const launched = (await ec2.send(new RunInstancesCommand({
        ImageId: helper.ImageId,
        InstanceType: defaultInstanceType('x86_64') as never,
        MinCount: 1,
        MaxCount: 1,
        IamInstanceProfile: { Name: opts.instanceProfile },
        ...(subnetId ? { SubnetId: subnetId } : {}),
      }))).Instances?.[0];
      if (!launched?.InstanceId || !launched.Placement?.AvailabilityZone) throw new Error('RunInstances returned no instance or placement');
      return { instanceId: launched.InstanceId, zone: launched.Placement.AvailabilityZone };
    },

    async createVolume(snapshotId: string, zone: string): Promise<string> {
      const { VolumeId } = await ec2.send(new CreateVolumeCommand({ SnapshotId: snapshotId, AvailabilityZone: zone, VolumeType: 'gp2' }));
      if (!VolumeId) throw new Error('CreateVolume returned no id');
      return VolumeId;
    },

    volumeCreated: (volumeId: string) =>
      sleepThenPoll(opts.volumePollMs, 'the volume', async () => ((await volumeOf(volumeId))?.State !== 'creating' ? true : undefined)),

    instanceRunning: (instanceId: string) =>
      sleepThenPoll(opts.instancePollMs, 'the instance', async () => ((await instanceOf(instanceId))?.State?.Name === 'running' ? true : undefined)),

    bothReady: (volumeId: string, instanceId: string) =>
      sleepThenPoll(opts.volumePollMs, 'the volume and the instance', async () => {
        const [volume, instance] = [await volumeOf(volumeId), await instanceOf(instanceId)];
        return volume?.State !== 'creating' && instance?.State?.Name === 'running' ? true : undefined;
      }),

    attach: (volumeId: string, instanceId: string) =>
      ec2.send(new AttachVolumeCommand({ VolumeId: volumeId, InstanceId: instanceId, Device: ATTACH_DEVICE })),

    attached: (volumeId: string) =>
      sleepThenPoll(opts.volumePollMs, 'the attachment', async () => ((await volumeOf(volumeId))?.Attachments?.[0]?.State === 'attached' ? true : undefined)),

    agentOnline: (instanceId: string) =>
      sleepThenPoll(opts.instancePollMs, 'the SSM agent', async () => {
        const { InstanceInformationList } = await ssm.send(new DescribeInstanceInformationCommand({
          InstanceInformationFilterList: [{ key: 'InstanceIds', valueSet: [instanceId] }],
        }));
        return InstanceInformationList?.[0]?.PingStatus === 'Online' ? true : undefined;
      }),

    async repositoryUri(): Promise<string> {
      const { repositories } = await ecr.send(new DescribeRepositoriesCommand({ repositoryNames: [opts.repository] }));
      const uri = repositories?.[0]?.repositoryUri;
      if (!uri) throw new Error(`repository ${opts.repository} not found`);
      return uri;
    },

    /** The conversion command, its end polled, its output read from the bucket, the image verified. */
    async convert(target: { ami: Image; volumeId: string; instanceId: string; repositoryUri: string }): Promise<void> {
      const { ami, volumeId, instanceId, repositoryUri } = target;
      const spec: ConversionSpec = {
        volumeId,
        device: ATTACH_DEVICE,
        repositoryUri,
        tags: [...plan.imageTags, ami.ImageId!],
        architecture: ami.Architecture as Architecture,
        region: plan.region,
        ami: { id: ami.ImageId!, name: ami.Name!, creationDate: ami.CreationDate! },
        changes: plan.changes,
        excludes: plan.excludes,
        compression: plan.compression,
      };
      const { Command } = await ssm.send(new SendCommandCommand({
        InstanceIds: [instanceId],
        DocumentName: 'AWS-RunShellScript',
        OutputS3BucketName: opts.bucket,
        Parameters: { commands: [renderConversionCommand(spec)], executionTimeout: [String(Math.max(60, plan.maxRuntimeSeconds - 120))] },
      }));
      const commandId = Command!.CommandId!;
      const invocation = await sleepThenPoll(opts.instancePollMs, 'the command', async () => {
        try {
          const answer = await ssm.send(new GetCommandInvocationCommand({ CommandId: commandId, InstanceId: instanceId }));
          return ['Pending', 'InProgress', 'Delayed'].includes(answer.Status ?? '') ? undefined : answer;
        } catch (error) {
          if (hasAwsCode(error, 'InvocationDoesNotExist')) return undefined;
          throw error;
        }
      });
      const read = async (stream: 'stdout' | 'stderr') => {
        const key = `${commandId}/${instanceId}/awsrunShellScript/0.awsrunShellScript/${stream}`;
        const object = await s3.send(new GetObjectCommand({ Bucket: opts.bucket, Key: key })).catch(() => undefined);
        return (await object?.Body?.transformToString('utf8')) ?? '';
      };
      const [stdout, stderr] = await Promise.all([read('stdout'), read('stderr')]);
      mark('commandDone', { commandId, status: invocation.Status });
      if (invocation.Status !== 'Success') throw new Error(`the command ended ${invocation.Status}: ${stderr}`);
      const result = parseResult(stdout);
      if (!result) throw new Error('the command printed no result line');
      await verifyImage({ repositoryName: opts.repository, digest: result.digest, tags: result.tags }, { clients, report: () => undefined, pollSeconds: 1 });
      mark('image', { digest: result.digest });
    },

    terminate: (instanceId: string) => ec2.send(new TerminateInstancesCommand({ InstanceIds: [instanceId] })),

    terminated: (instanceId: string) =>
      sleepThenPoll(opts.instancePollMs, 'termination', async () => ((await instanceOf(instanceId))?.State?.Name === 'terminated' ? true : undefined)),

    async deleteVolume(volumeId: string): Promise<void> {
      await sleepThenPoll(opts.volumePollMs, 'the volume to detach', async () => ((await volumeOf(volumeId))?.State === 'available' ? true : undefined));
      await ec2.send(new DeleteVolumeCommand({ VolumeId: volumeId }));
    },
  };
}

type Steps = ReturnType<typeof steps>;

async function originalOrder(step: Steps): Promise<void> {
  const { instanceId, zone } = await step.launch();
  const { ami, snapshotId } = await step.findAmi();
  const volumeId = await step.createVolume(snapshotId, zone);
  await step.bothReady(volumeId, instanceId);
  await step.attach(volumeId, instanceId);
  const repositoryUri = await step.repositoryUri();
  await step.agentOnline(instanceId);
  mark('attached');
  await step.convert({ ami, volumeId, instanceId, repositoryUri });
  await step.terminate(instanceId);
}

async function sequentialOrder(step: Steps): Promise<void> {
  const { ami, snapshotId } = await step.findAmi();
  const { subnetId, zone } = await step.defaultSubnet();
  const repositoryUri = await step.repositoryUri();
  const volumeId = await step.createVolume(snapshotId, zone);
  await step.volumeCreated(volumeId);
  const { instanceId } = await step.launch(subnetId);
  await step.instanceRunning(instanceId);
  await step.agentOnline(instanceId);
  await step.attach(volumeId, instanceId);
  await step.attached(volumeId);
  mark('attached');
  await step.convert({ ami, volumeId, instanceId, repositoryUri });
  await step.terminate(instanceId);
  await step.terminated(instanceId);
  await step.deleteVolume(volumeId);
}

async function main(): Promise<void> {
  mark('ready');
  const opts = options();
  const clients = createClients({ region: process.env.AWS_REGION ?? 'us-east-1' });
  const step = steps(clients, opts);
  await (opts.order === 'original' ? originalOrder(step) : sequentialOrder(step));
  mark('done');
  clients.destroy();
}

main().catch((error: unknown) => {
  process.stderr.write(`original: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});

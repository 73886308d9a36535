// Faithfulness through a client nobody here wrote: Debian's AWS CLI v2 (botocore's parsers) must
// read every answer the twin gives for the operations the tool uses, errors included.
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { startTwin, type RunningTwin } from '../support/twin.js';

// Each CLI call starts a Python interpreter: about a second on a busy machine.
jest.setTimeout(120_000);

const execFileAsync = promisify(execFile);
const AWS = '/usr/bin/aws';
const REGISTRY = process.env.AMI2DOCKER_TEST_REGISTRY ?? '127.0.0.1:5000';
const DOCKER_HOST = process.env.DOCKER_HOST ?? 'unix:///tmp/ami2docker-services/docker.sock';

let twin: RunningTwin;
let work: string;

interface CliFailure { code: number; stderr: string }

async function aws(...args: string[]): Promise<any> {
  const { stdout } = await execFileAsync(AWS, ['--endpoint-url', twin.url, '--region', 'us-east-1', '--output', 'json', ...args], {
    env: {
      PATH: process.env.PATH,
      HOME: work,
      ...twin.env,
      // The CLI in Debian 12 predates AWS_ENDPOINT_URL; --endpoint-url above does the same.
      AWS_CONFIG_FILE: '/dev/null',
      AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
      AWS_PAGER: '',
    },
  });
  return stdout.trim() === '' ? {} : JSON.parse(stdout);
}

async function awsFails(...args: string[]): Promise<CliFailure> {
  try {
    await aws(...args);
  } catch (error) {
    const e = error as { code: number; stderr: string };
    return { code: e.code, stderr: e.stderr };
  }
  throw new Error(`aws ${args.join(' ')} succeeded`);
}

/** Polls a CLI call until `accept` holds for its answer. */
async function until<T>(what: string, call: () => Promise<T>, accept: (value: T) => boolean, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await call();
    if (accept(value)) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(value)}`);
    await sleep(100);
  }
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'twin-awscli-'));
  const disk = join(work, 'disk.img');
  await execFileAsync('truncate', ['-s', '64M', disk]);
  await execFileAsync('mkfs.ext4', ['-q', '-F', disk]);
  twin = await startTwin({ amis: [{ name: 'cli-test-ami-1', disk, architecture: 'x86_64', creationDate: '2024-05-06T07:08:09.000Z' }], timeScale: 0.02 });
}, 60_000);

afterAll(async () => {
  await twin?.stop();
  await rm(work, { recursive: true, force: true });
});

describe('AWS CLI v2 against the twin', () => {
  const state: { image?: string; snapshot?: string; helper?: string; instance?: string; az?: string; volume?: string } = {};

  it('sts get-caller-identity', async () => {
    const identity = await aws('sts', 'get-caller-identity');
    expect(identity).toEqual({ UserId: expect.stringMatching(/^AIDA/), Account: '123456789012', Arn: 'arn:aws:iam::123456789012:user/developer' });
  });

  it('ec2 describe-images by owner and name pattern', async () => {
    const { Images } = await aws('ec2', 'describe-images', '--owners', 'self', '--filters', 'Name=name,Values=cli-test-ami-?');
    expect(Images).toHaveLength(1);
    const [image] = Images;
    expect(image).toMatchObject({
      ImageId: expect.stringMatching(/^ami-[0-9a-f]{17}$/),
      Name: 'cli-test-ami-1',
      Architecture: 'x86_64',
      CreationDate: '2024-05-06T07:08:09.000Z',
      RootDeviceName: '/dev/xvda',
      RootDeviceType: 'ebs',
      State: 'available',
      OwnerId: '123456789012',
    });
    expect(image.BlockDeviceMappings[0]).toMatchObject({ DeviceName: '/dev/xvda', Ebs: { SnapshotId: expect.stringMatching(/^snap-/), VolumeSize: 1 } });
    state.image = image.ImageId;
    state.snapshot = image.BlockDeviceMappings[0].Ebs.SnapshotId;
    const helper = await aws('ec2', 'describe-images', '--owners', 'amazon', '--filters', 'Name=name,Values=al2023-ami-2023.*-x86_64');
    state.helper = helper.Images[0].ImageId;
    expect(helper.Images[0].ImageOwnerAlias).toBe('amazon');
  });

  it('ssm get-parameter resolves the public Amazon Linux parameter to the helper image', async () => {
    const { Parameter } = await aws('ssm', 'get-parameter', '--name', '/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64');
    expect(Parameter).toMatchObject({ Value: state.helper, Type: 'String', DataType: 'aws:ec2:image' });
  });

  it('iam create-role, instance profile and get-instance-profile', async () => {
    const trust = { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { Service: 'ec2.amazonaws.com' }, Action: 'sts:AssumeRole' }] };
    const { Role } = await aws('iam', 'create-role', '--role-name', 'cli-helper', '--assume-role-policy-document', JSON.stringify(trust), '--tags', 'Key=team,Value=cli');
    // botocore URL-decodes the document IAM sends encoded, and parses it.
    expect(Role).toMatchObject({ RoleName: 'cli-helper', Arn: 'arn:aws:iam::123456789012:role/cli-helper', AssumeRolePolicyDocument: trust, Tags: [{ Key: 'team', Value: 'cli' }] });
    await aws('iam', 'attach-role-policy', '--role-name', 'cli-helper', '--policy-arn', 'arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore');
    await aws('iam', 'create-instance-profile', '--instance-profile-name', 'cli-helper');
    await aws('iam', 'add-role-to-instance-profile', '--instance-profile-name', 'cli-helper', '--role-name', 'cli-helper');
    const { InstanceProfile } = await aws('iam', 'get-instance-profile', '--instance-profile-name', 'cli-helper');
    expect(InstanceProfile).toMatchObject({ InstanceProfileName: 'cli-helper', Arn: 'arn:aws:iam::123456789012:instance-profile/cli-helper' });
    expect(InstanceProfile.Roles.map((r: { RoleName: string }) => r.RoleName)).toEqual(['cli-helper']);
  });

  it('ec2 run-instances and describe-instances', async () => {
    const run = () => aws('ec2', 'run-instances', '--image-id', state.helper!, '--instance-type', 't3.micro', '--iam-instance-profile', 'Name=cli-helper',
      '--metadata-options', 'HttpTokens=required', '--instance-initiated-shutdown-behavior', 'terminate', '--client-token', 'cli-token-1',
      '--tag-specifications', 'ResourceType=instance,Tags=[{Key=run,Value=cli}]');
    const reservation = await until('the profile to propagate', () => run().catch((e) => ({ error: String(e.stderr) })), (r) => !('error' in r));
    const [instance] = reservation.Instances;
    expect(instance).toMatchObject({
      InstanceId: expect.stringMatching(/^i-[0-9a-f]{17}$/),
      State: { Code: 0, Name: 'pending' },
      InstanceType: 't3.micro',
      ClientToken: 'cli-token-1',
      Tags: [{ Key: 'run', Value: 'cli' }],
      MetadataOptions: { HttpTokens: 'required' },
      IamInstanceProfile: { Arn: 'arn:aws:iam::123456789012:instance-profile/cli-helper' },
    });
    state.instance = instance.InstanceId;
    state.az = instance.Placement.AvailabilityZone;
    const described = await until('running', () => aws('ec2', 'describe-instances', '--instance-ids', state.instance!),
      (d) => d.Reservations[0].Instances[0].State.Name === 'running');
    expect(described.Reservations[0].Instances[0].BlockDeviceMappings[0]).toMatchObject({ DeviceName: '/dev/xvda', Ebs: { Status: 'attached', DeleteOnTermination: true } });
    const byTag = await aws('ec2', 'describe-instances', '--filters', 'Name=tag:run,Values=cli', 'Name=instance-state-name,Values=pending,running');
    expect(byTag.Reservations.flatMap((r: { Instances: { InstanceId: string }[] }) => r.Instances.map((i) => i.InstanceId))).toEqual([state.instance]);
  });

  it('ec2 create-volume, describe-volumes and attach-volume', async () => {
    const volume = await aws('ec2', 'create-volume', '--snapshot-id', state.snapshot!, '--availability-zone', state.az!, '--volume-type', 'gp3',
      '--tag-specifications', 'ResourceType=volume,Tags=[{Key=run,Value=cli}]');
    expect(volume).toMatchObject({ VolumeId: expect.stringMatching(/^vol-[0-9a-f]{17}$/), State: 'creating', Size: 1, SnapshotId: state.snapshot, AvailabilityZone: state.az });
    state.volume = volume.VolumeId;
    await until('available', () => aws('ec2', 'describe-volumes', '--volume-ids', state.volume!), (d) => d.Volumes[0].State === 'available');
    const attachment = await aws('ec2', 'attach-volume', '--volume-id', state.volume!, '--instance-id', state.instance!, '--device', '/dev/sdf');
    expect(attachment).toMatchObject({ VolumeId: state.volume, InstanceId: state.instance, Device: '/dev/sdf', State: 'attaching' });
    const attached = await until('attached', () => aws('ec2', 'describe-volumes', '--filters', 'Name=tag:run,Values=cli'),
      (d) => d.Volumes[0]?.Attachments[0]?.State === 'attached');
    expect(attached.Volumes[0]).toMatchObject({ State: 'in-use', Tags: [{ Key: 'run', Value: 'cli' }] });
  });

  it('ssm send-command and get-command-invocation', async () => {
    await until('Online', () => aws('ssm', 'describe-instance-information', '--filters', `Key=InstanceIds,Values=${state.instance}`),
      (d) => d.InstanceInformationList[0]?.PingStatus === 'Online');
    const link = `/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_${state.volume!.replace('-', '')}`;
    const { Command } = await aws('ssm', 'send-command', '--instance-ids', state.instance!, '--document-name', 'AWS-RunShellScript', '--comment', 'cli test',
      '--parameters', JSON.stringify({ commands: [`readlink ${link}`, 'echo to-stderr >&2'], executionTimeout: ['60'] }));
    expect(Command).toMatchObject({ CommandId: expect.stringMatching(/^[0-9a-f-]{36}$/), DocumentName: 'AWS-RunShellScript', Comment: 'cli test', InstanceIds: [state.instance] });
    const invocation = await until('the command to finish',
      () => aws('ssm', 'get-command-invocation', '--command-id', Command.CommandId, '--instance-id', state.instance!).catch(() => ({ Status: 'NotYet' })),
      (i) => ['Success', 'Failed', 'TimedOut', 'Cancelled'].includes(i.Status));
    expect(invocation).toMatchObject({ Status: 'Success', StatusDetails: 'Success', ResponseCode: 0, PluginName: 'aws:runShellScript', StandardErrorContent: 'to-stderr\n' });
    expect(invocation.StandardOutputContent).toMatch(/^\/dev\/loop\d+\n$/);
  });

  it('ecr create-repository and describe-images of a pushed image', async () => {
    const name = `twin-cli-${process.pid}`;
    const { repository } = await aws('ecr', 'create-repository', '--repository-name', name, '--tags', 'Key=run,Value=cli');
    expect(repository).toMatchObject({ repositoryName: name, repositoryUri: `${REGISTRY}/${name}`, registryId: '123456789012' });
    expect(repository.createdAt).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect((await aws('ecr', 'describe-images', '--repository-name', name)).imageDetails).toEqual([]);
    const image = `${REGISTRY}/${name}:v1`;
    const dockerEnv = { ...process.env, DOCKER_HOST, DOCKER_CONFIG: join(work, 'docker') };
    await writeFile(join(work, 'hello.txt'), 'hello\n');
    try {
      await execFileAsync('sh', ['-c', `tar -C '${work}' -c hello.txt | docker import - '${image}' && docker push -q '${image}'`], { env: dockerEnv });
      const { imageDetails } = await aws('ecr', 'describe-images', '--repository-name', name);
      expect(imageDetails).toHaveLength(1);
      expect(imageDetails[0]).toMatchObject({ repositoryName: name, imageTags: ['v1'], imageDigest: expect.stringMatching(/^sha256:[0-9a-f]{64}$/) });
      expect(imageDetails[0].imageSizeInBytes).toBeGreaterThan(0);
    } finally {
      await execFileAsync('docker', ['rmi', image], { env: dockerEnv }).catch(() => undefined);
      await aws('ecr', 'delete-repository', '--repository-name', name, '--force');
    }
  });

  it('s3api create-bucket, put-object and list-objects-v2', async () => {
    await aws('s3api', 'create-bucket', '--bucket', 'twin-cli-bucket');
    const file = join(work, 'object.txt');
    await writeFile(file, 'some output\n');
    const put = await aws('s3api', 'put-object', '--bucket', 'twin-cli-bucket', '--key', 'runs/a b/out.txt', '--body', file);
    expect(put.ETag).toMatch(/^"[0-9a-f]{32}"$/);
    await aws('s3api', 'put-object', '--bucket', 'twin-cli-bucket', '--key', 'other/x', '--body', file);
    const listed = await aws('s3api', 'list-objects-v2', '--bucket', 'twin-cli-bucket', '--prefix', 'runs/');
    expect(listed.Contents.map((c: { Key: string; Size: number }) => [c.Key, c.Size])).toEqual([['runs/a b/out.txt', 12]]);
    await aws('s3api', 'get-object', '--bucket', 'twin-cli-bucket', '--key', 'runs/a b/out.txt', join(work, 'got.txt'));
    const { readFile } = await import('node:fs/promises');
    expect(await readFile(join(work, 'got.txt'), 'utf8')).toBe('some output\n');
  });

  it('errors reach the CLI with their codes, in every protocol', async () => {
    const cases: [string[], string][] = [
      [['ec2', 'describe-images', '--image-ids', 'ami-00000000000000000'], 'InvalidAMIID.NotFound'],
      [['ec2', 'describe-instances', '--filters', 'Name=no-such-filter,Values=x'], 'InvalidParameterValue'],
      [['iam', 'get-role', '--role-name', 'missing'], 'NoSuchEntity'],
      [['ssm', 'get-parameter', '--name', '/no/such/parameter'], 'ParameterNotFound'],
      [['ecr', 'describe-repositories', '--repository-names', 'missing'], 'RepositoryNotFoundException'],
      [['s3api', 'get-object', '--bucket', 'twin-cli-bucket', '--key', 'missing', join(work, 'x')], 'NoSuchKey'],
      [['s3api', 'list-objects-v2', '--bucket', 'no-such-bucket'], 'NoSuchBucket'],
    ];
    for (const [args, code] of cases) {
      const failure = await awsFails(...args);
      expect({ args, code: failure.code, stderr: failure.stderr }).toEqual({ args, code: 254, stderr: expect.stringContaining(`(${code})`) });
    }
  });
});

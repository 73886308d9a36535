// The twin through the AWS SDK v3 (the clients the tool itself uses): lifecycles, idempotency,
// tags on create, IAM propagation, DryRun, faults and policy enforcement as the SDK parses them.
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import {
  AttachVolumeCommand, CreateSecurityGroupCommand, CreateVolumeCommand, DeleteSecurityGroupCommand, DeleteVolumeCommand, DescribeInstancesCommand,
  DescribeSecurityGroupsCommand, DescribeVolumesCommand, DetachVolumeCommand, RunInstancesCommand, TerminateInstancesCommand,
  waitUntilInstanceRunning, waitUntilInstanceTerminated, waitUntilVolumeAvailable, waitUntilVolumeInUse,
  type CreateVolumeCommandInput, type RunInstancesCommandInput,
} from '@aws-sdk/client-ec2';
import { CreateRepositoryCommand } from '@aws-sdk/client-ecr';
import { AddRoleToInstanceProfileCommand, CreateInstanceProfileCommand, CreateRoleCommand, GetRoleCommand } from '@aws-sdk/client-iam';
import { CreateBucketCommand, GetBucketTaggingCommand, HeadBucketCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { DescribeInstanceInformationCommand, SendCommandCommand } from '@aws-sdk/client-ssm';
import { GetCallerIdentityCommand } from '@aws-sdk/client-sts';
import { setTimeout as sleep } from 'node:timers/promises';
import { startTwin, type RunningTwin } from '../support/twin.js';
import { clientsFor, createHelperProfile, helperImageId, runInstance, runScript, waitFor, waitOnline, type Clients } from './harness.js';

jest.setTimeout(60_000);

const TIME_SCALE = 0.05;
const waiter = (clients: Clients) => ({ client: clients.ec2, minDelay: 0.05, maxDelay: 0.2, maxWaitTime: 30 });
const errorOf = async (promise: Promise<unknown>): Promise<Error & { $metadata?: { httpStatusCode?: number } }> => {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected the call to fail');
};
const tags = (pairs: Record<string, string>) => Object.entries(pairs).map(([Key, Value]) => ({ Key, Value }));

let twin: RunningTwin;
let clients: Clients;
let helper: string;
let subnetAz: string;

beforeAll(async () => {
  twin = await startTwin({ timeScale: TIME_SCALE });
  clients = clientsFor(twin);
  helper = await helperImageId(clients);
  await createHelperProfile(clients, 'sdk-helper');
  // Let the profile propagate before the tests that are not about propagation.
  await sleep(10_000 * TIME_SCALE + 100);
});

afterAll(async () => {
  clients?.destroy();
  await twin?.stop();
});

describe('lifecycles', () => {
  it('moves instances and volumes through pending/running, creating/available, attaching/attached, shutting-down/terminated', async () => {
    const instanceId = await runInstance(clients, {
      ImageId: helper,
      InstanceType: 't3.micro',
      IamInstanceProfile: { Name: 'sdk-helper' },
      TagSpecifications: [{ ResourceType: 'instance', Tags: tags({ run: 'life' }) }, { ResourceType: 'volume', Tags: tags({ run: 'life' }) }],
    });
    const pending = await clients.ec2.send(new DescribeInstancesCommand({ InstanceIds: [instanceId] }));
    const instance = pending.Reservations![0].Instances![0];
    expect(instance.State?.Name).toBe('pending');
    subnetAz = instance.Placement!.AvailabilityZone!;
    await waitUntilInstanceRunning(waiter(clients), { InstanceIds: [instanceId] });

    const { VolumeId } = await clients.ec2.send(new CreateVolumeCommand({ AvailabilityZone: subnetAz, Size: 1, TagSpecifications: [{ ResourceType: 'volume', Tags: tags({ run: 'life' }) }] }));
    expect((await clients.ec2.send(new DescribeVolumesCommand({ VolumeIds: [VolumeId!] }))).Volumes![0].State).toBe('creating');
    await waitUntilVolumeAvailable(waiter(clients), { VolumeIds: [VolumeId!] });
    const attaching = await clients.ec2.send(new AttachVolumeCommand({ VolumeId, InstanceId: instanceId, Device: '/dev/sdf' }));
    expect(attaching.State).toBe('attaching');
    await waitUntilVolumeInUse(waiter(clients), { VolumeIds: [VolumeId!] });
    await waitFor('attached', async () => ((await volume(VolumeId!)).Attachments?.[0]?.State === 'attached' ? true : undefined));

    await clients.ec2.send(new DetachVolumeCommand({ VolumeId }));
    expect((await volume(VolumeId!)).Attachments?.[0]?.State).toBe('detaching');
    await waitUntilVolumeAvailable(waiter(clients), { VolumeIds: [VolumeId!] });

    const rootVolume = (await clients.ec2.send(new DescribeVolumesCommand({ Filters: [{ Name: 'attachment.instance-id', Values: [instanceId] }] }))).Volumes![0];
    expect(rootVolume.Tags).toEqual(tags({ run: 'life' }));
    const terminating = await clients.ec2.send(new TerminateInstancesCommand({ InstanceIds: [instanceId] }));
    expect(terminating.TerminatingInstances![0]).toMatchObject({ PreviousState: { Name: 'running' }, CurrentState: { Name: 'shutting-down' } });
    await waitUntilInstanceTerminated(waiter(clients), { InstanceIds: [instanceId] });
    const reason = (await clients.ec2.send(new DescribeInstancesCommand({ InstanceIds: [instanceId] }))).Reservations![0].Instances![0].StateReason;
    expect(reason?.Code).toBe('Client.UserInitiatedShutdown');
    // The root volume was DeleteOnTermination; the detached data volume stays.
    expect((await errorOf(clients.ec2.send(new DescribeVolumesCommand({ VolumeIds: [rootVolume.VolumeId!] })))).name).toBe('InvalidVolume.NotFound');
    expect((await volume(VolumeId!)).State).toBe('available');
    await clients.ec2.send(new DeleteVolumeCommand({ VolumeId }));
  });

  it('refuses to delete what is still in use, as EC2 does', async () => {
    const { GroupId } = await clients.ec2.send(new CreateSecurityGroupCommand({ GroupName: 'in-use', Description: 'test' }));
    const duplicate = await errorOf(clients.ec2.send(new CreateSecurityGroupCommand({ GroupName: 'in-use', Description: 'test' })));
    expect(duplicate.name).toBe('InvalidGroup.Duplicate');
    const instanceId = await runInstance(clients, { ImageId: helper, InstanceType: 't3.micro', SecurityGroupIds: [GroupId!] });
    expect((await errorOf(clients.ec2.send(new DeleteSecurityGroupCommand({ GroupId })))).name).toBe('DependencyViolation');
    await waitUntilInstanceRunning(waiter(clients), { InstanceIds: [instanceId] });
    const { VolumeId } = await clients.ec2.send(new CreateVolumeCommand({ AvailabilityZone: subnetAz, Size: 1 }));
    await waitUntilVolumeAvailable(waiter(clients), { VolumeIds: [VolumeId!] });
    await clients.ec2.send(new AttachVolumeCommand({ VolumeId, InstanceId: instanceId, Device: '/dev/sdg' }));
    expect((await errorOf(clients.ec2.send(new DeleteVolumeCommand({ VolumeId })))).name).toBe('VolumeInUse');
    const otherAz = subnetAz.endsWith('a') ? subnetAz.replace(/a$/, 'b') : subnetAz.replace(/b$/, 'a');
    const { VolumeId: elsewhere } = await clients.ec2.send(new CreateVolumeCommand({ AvailabilityZone: otherAz, Size: 1 }));
    await waitUntilVolumeAvailable(waiter(clients), { VolumeIds: [elsewhere!] });
    const mismatch = await errorOf(clients.ec2.send(new AttachVolumeCommand({ VolumeId: elsewhere, InstanceId: instanceId, Device: '/dev/sdh' })));
    expect(mismatch.name).toBe('InvalidVolume.ZoneMismatch');
    await clients.ec2.send(new TerminateInstancesCommand({ InstanceIds: [instanceId] }));
    await waitUntilInstanceTerminated(waiter(clients), { InstanceIds: [instanceId] });
    await clients.ec2.send(new DeleteSecurityGroupCommand({ GroupId }));
    await clients.ec2.send(new DeleteVolumeCommand({ VolumeId }));
    await clients.ec2.send(new DeleteVolumeCommand({ VolumeId: elsewhere }));
  });
});

describe('idempotency and tags on create', () => {
  it('returns the same instance for a repeated ClientToken and refuses changed parameters', async () => {
    const input: RunInstancesCommandInput = {
      ImageId: helper, InstanceType: 't3.micro', MinCount: 1, MaxCount: 1, ClientToken: 'idem-1',
      TagSpecifications: [{ ResourceType: 'instance', Tags: tags({ 'ami2docker:run-id': 'idem' }) }],
    };
    const first = await clients.ec2.send(new RunInstancesCommand(input));
    const second = await clients.ec2.send(new RunInstancesCommand(input));
    expect(second.Instances![0].InstanceId).toBe(first.Instances![0].InstanceId);
    expect(first.Instances![0].Tags).toEqual(tags({ 'ami2docker:run-id': 'idem' }));
    const mismatch = await errorOf(clients.ec2.send(new RunInstancesCommand({ ...input, InstanceType: 't3.small' })));
    expect(mismatch.name).toBe('IdempotentParameterMismatch');

    const created = (await twin.control.history()).filter((e) => e.operation === 'RunInstances' && e.tags?.['ami2docker:run-id'] === 'idem');
    expect(created.map((e) => e.created)).toEqual([true, false]);
    expect((await twin.control.resources()).instances.filter((i) => i.tags['ami2docker:run-id'] === 'idem')).toHaveLength(1);
    await clients.ec2.send(new TerminateInstancesCommand({ InstanceIds: [first.Instances![0].InstanceId!] }));
  });

  it('returns the same volume for a repeated ClientToken and refuses changed parameters', async () => {
    const input: CreateVolumeCommandInput = { AvailabilityZone: subnetAz, Size: 2, ClientToken: 'vol-token', TagSpecifications: [{ ResourceType: 'volume', Tags: tags({ run: 'idem' }) }] };
    const first = await clients.ec2.send(new CreateVolumeCommand(input));
    const second = await clients.ec2.send(new CreateVolumeCommand(input));
    expect(second.VolumeId).toBe(first.VolumeId);
    expect(first.Tags).toEqual(tags({ run: 'idem' }));
    expect((await errorOf(clients.ec2.send(new CreateVolumeCommand({ ...input, Size: 3 })))).name).toBe('IdempotentParameterMismatch');
    const found = await clients.ec2.send(new DescribeVolumesCommand({ Filters: [{ Name: 'tag:run', Values: ['idem'] }] }));
    expect(found.Volumes!.map((v) => v.VolumeId)).toEqual([first.VolumeId]);
  });

  it('keeps the tags a bucket is created with', async () => {
    await clients.s3.send(new CreateBucketCommand({ Bucket: 'tagged-on-create', CreateBucketConfiguration: { Tags: tags({ 'ami2docker:run-id': 'bucket-run' }) } }));
    const { TagSet } = await clients.s3.send(new GetBucketTaggingCommand({ Bucket: 'tagged-on-create' }));
    expect(TagSet).toEqual(tags({ 'ami2docker:run-id': 'bucket-run' }));
    expect((await twin.control.resources()).buckets.find((b) => b.name === 'tagged-on-create')?.tags).toEqual({ 'ami2docker:run-id': 'bucket-run' });
  });

  it('finds a security group by its tag from the moment it exists', async () => {
    const { GroupId, Tags } = await clients.ec2.send(new CreateSecurityGroupCommand({
      GroupName: 'tagged', Description: 'tagged', TagSpecifications: [{ ResourceType: 'security-group', Tags: tags({ 'ami2docker:run-id': 'sg-run' }) }],
    }));
    expect(Tags).toEqual(tags({ 'ami2docker:run-id': 'sg-run' }));
    const { SecurityGroups } = await clients.ec2.send(new DescribeSecurityGroupsCommand({ Filters: [{ Name: 'tag:ami2docker:run-id', Values: ['sg-run'] }] }));
    expect(SecurityGroups!.map((g) => g.GroupId)).toEqual([GroupId]);
  });
});

describe('IAM propagation', () => {
  it('refuses a brand-new instance profile for a while, then accepts it', async () => {
    await clients.iam.send(new CreateRoleCommand({ RoleName: 'fresh', AssumeRolePolicyDocument: '{"Version":"2012-10-17","Statement":[]}' }));
    await clients.iam.send(new CreateInstanceProfileCommand({ InstanceProfileName: 'fresh' }));
    await clients.iam.send(new AddRoleToInstanceProfileCommand({ InstanceProfileName: 'fresh', RoleName: 'fresh' }));
    const input: RunInstancesCommandInput = { ImageId: helper, InstanceType: 't3.micro', MinCount: 1, MaxCount: 1, IamInstanceProfile: { Name: 'fresh' }, ClientToken: 'fresh-1' };
    const early = await errorOf(clients.ec2.send(new RunInstancesCommand(input)));
    expect(early.name).toBe('InvalidParameterValue');
    expect(early.message).toBe('Value (fresh) for parameter iamInstanceProfile.name is invalid. Invalid IAM Instance Profile name');
    await sleep(10_000 * TIME_SCALE + 100);
    const later = await clients.ec2.send(new RunInstancesCommand(input));
    expect(later.Instances![0].IamInstanceProfile?.Arn).toBe('arn:aws:iam::123456789012:instance-profile/fresh');
  });
});

describe('DryRun', () => {
  it('answers DryRunOperation (412) when allowed and UnauthorizedOperation when the policy denies', async () => {
    const before = (await twin.control.resources()).instances.length;
    const input: RunInstancesCommandInput = { ImageId: helper, InstanceType: 't3.micro', MinCount: 1, MaxCount: 1, DryRun: true };
    const allowed = await errorOf(clients.ec2.send(new RunInstancesCommand(input)));
    expect(allowed.name).toBe('DryRunOperation');
    expect(allowed.$metadata?.httpStatusCode).toBe(412);
    await twin.control.setPolicy({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'ec2:Describe*', Resource: '*' }] });
    try {
      const denied = await errorOf(clients.ec2.send(new RunInstancesCommand(input)));
      expect(denied.name).toBe('UnauthorizedOperation');
    } finally {
      await twin.control.setPolicy(undefined);
    }
    expect((await twin.control.resources()).instances).toHaveLength(before);
  });
});

describe('faults', () => {
  it('throttles in each protocol\'s own shape, and the SDK retries through it', async () => {
    const once = clientsFor(twin, 1);
    const patient = clientsFor(twin, 10);
    try {
      await twin.control.fault({ throttle: { rate: 1 } });
      expect((await errorOf(once.ec2.send(new DescribeVolumesCommand({})))).name).toBe('RequestLimitExceeded');
      expect((await errorOf(once.iam.send(new GetRoleCommand({ RoleName: 'sdk-helper' })))).name).toBe('Throttling');
      expect((await errorOf(once.ssm.send(new DescribeInstanceInformationCommand({})))).name).toBe('ThrottlingException');
      expect((await errorOf(once.s3.send(new HeadBucketCommand({ Bucket: 'any' })))).$metadata?.httpStatusCode).toBe(503);
      await twin.control.fault({ throttle: { rate: 0.3, operations: ['DescribeVolumes'] } });
      for (let i = 0; i < 10; i++) await patient.ec2.send(new DescribeVolumesCommand({}));
      const log = await import('node:fs/promises').then((fs) => fs.readFile(`${twin.stateDir}/requests.log`, 'utf8'));
      expect(log).toMatch(/DescribeVolumes .* 503 RequestLimitExceeded/);
    } finally {
      await twin.control.clearFaults();
      once.destroy();
      patient.destroy();
    }
  });

  it('fails the next N calls of an operation with an injected error', async () => {
    const once = clientsFor(twin, 1);
    try {
      await twin.control.fault({ error: { operation: 'CreateVolume', code: 'InsufficientVolumeCapacity', message: 'no capacity', count: 2 } });
      for (let i = 0; i < 2; i++) {
        const error = await errorOf(once.ec2.send(new CreateVolumeCommand({ AvailabilityZone: subnetAz, Size: 1 })));
        expect([error.name, error.message]).toEqual(['InsufficientVolumeCapacity', 'no capacity']);
      }
      const { VolumeId } = await once.ec2.send(new CreateVolumeCommand({ AvailabilityZone: subnetAz, Size: 1 }));
      expect(VolumeId).toMatch(/^vol-/);
      const history = (await twin.control.history()).filter((e) => e.operation === 'CreateVolume').slice(-3);
      expect(history.map((e) => e.error ?? 'ok')).toEqual(['InsufficientVolumeCapacity', 'InsufficientVolumeCapacity', 'ok']);
    } finally {
      await twin.control.clearFaults();
      once.destroy();
    }
  });

  it('keeps the SSM agent of an instance from ever registering', async () => {
    await twin.control.fault({ ssmNeverRegisters: true });
    try {
      const instanceId = await runInstance(clients, { ImageId: helper, InstanceType: 't3.micro', IamInstanceProfile: { Name: 'sdk-helper' } });
      await waitUntilInstanceRunning(waiter(clients), { InstanceIds: [instanceId] });
      await sleep(40_000 * TIME_SCALE);
      const { InstanceInformationList } = await clients.ssm.send(new DescribeInstanceInformationCommand({ Filters: [{ Key: 'InstanceIds', Values: [instanceId] }] }));
      expect(InstanceInformationList).toEqual([]);
      const refused = await errorOf(clients.ssm.send(new SendCommandCommand({ InstanceIds: [instanceId], DocumentName: 'AWS-RunShellScript', Parameters: { commands: ['true'] } })));
      expect(refused.name).toBe('InvalidInstanceId');
      await clients.ec2.send(new TerminateInstancesCommand({ InstanceIds: [instanceId] }));
    } finally {
      await twin.control.clearFaults();
    }
  });

  it('registers no instance whose role lacks the SSM agent\'s permissions', async () => {
    await clients.iam.send(new CreateRoleCommand({ RoleName: 'bare', AssumeRolePolicyDocument: '{"Version":"2012-10-17","Statement":[]}' }));
    await clients.iam.send(new CreateInstanceProfileCommand({ InstanceProfileName: 'bare' }));
    await clients.iam.send(new AddRoleToInstanceProfileCommand({ InstanceProfileName: 'bare', RoleName: 'bare' }));
    const instanceId = await runInstance(clients, { ImageId: helper, InstanceType: 't3.micro', IamInstanceProfile: { Name: 'bare' } });
    await waitUntilInstanceRunning(waiter(clients), { InstanceIds: [instanceId] });
    await sleep(40_000 * TIME_SCALE);
    const { InstanceInformationList } = await clients.ssm.send(new DescribeInstanceInformationCommand({ Filters: [{ Key: 'InstanceIds', Values: [instanceId] }] }));
    expect(InstanceInformationList).toEqual([]);
    await clients.ec2.send(new TerminateInstancesCommand({ InstanceIds: [instanceId] }));
  });

  it('fails commands with the given exit code and stderr', async () => {
    const instanceId = await runInstance(clients, { ImageId: helper, InstanceType: 't3.micro', IamInstanceProfile: { Name: 'sdk-helper' } });
    await waitOnline(clients, instanceId);
    await twin.control.fault({ commandFails: { exitCode: 42, stderr: 'disk on fire' } });
    try {
      const invocation = await runScript(clients, instanceId, ['echo never runs']);
      expect(invocation).toMatchObject({ Status: 'Failed', ResponseCode: 42, StandardErrorContent: 'disk on fire', StandardOutputContent: '' });
    } finally {
      await twin.control.clearFaults();
      await clients.ec2.send(new TerminateInstancesCommand({ InstanceIds: [instanceId] }));
    }
  });
});

describe('policy enforcement', () => {
  afterAll(async () => twin.control.setPolicy(undefined));

  it('denies in every protocol\'s own shape, as the SDK names the errors', async () => {
    await twin.control.setPolicy({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: ['ec2:Describe*', 's3:ListBucket'], Resource: '*' }] });
    const once = clientsFor(twin, 1);
    try {
      await once.ec2.send(new DescribeVolumesCommand({}));
      const ec2 = await errorOf(once.ec2.send(new RunInstancesCommand({ ImageId: helper, InstanceType: 't3.micro', MinCount: 1, MaxCount: 1 })));
      expect(ec2.name).toBe('UnauthorizedOperation');
      expect(ec2.message).toMatch(/^You are not authorized to perform this operation\. User: arn:aws:iam::123456789012:user\/developer is not authorized to perform: ec2:RunInstances/);
      const iam = await errorOf(once.iam.send(new CreateRoleCommand({ RoleName: 'denied', AssumeRolePolicyDocument: '{"Statement":[]}' })));
      expect([iam.name, iam.$metadata?.httpStatusCode]).toEqual(['AccessDenied', 403]);
      const ssm = await errorOf(once.ssm.send(new SendCommandCommand({ InstanceIds: ['i-0123456789abcdef0'], DocumentName: 'AWS-RunShellScript', Parameters: { commands: ['true'] } })));
      expect([ssm.name, ssm.$metadata?.httpStatusCode]).toEqual(['AccessDeniedException', 400]);
      const ecr = await errorOf(once.ecr.send(new CreateRepositoryCommand({ repositoryName: 'denied' })));
      expect(ecr.name).toBe('AccessDeniedException');
      const s3 = await errorOf(once.s3.send(new CreateBucketCommand({ Bucket: 'denied-bucket' })));
      expect([s3.name, s3.$metadata?.httpStatusCode]).toEqual(['AccessDenied', 403]);
      // GetCallerIdentity needs no permission at all.
      expect((await once.sts.send(new GetCallerIdentityCommand({}))).Account).toBe('123456789012');
      expect((await twin.control.resources()).roles.map((r) => r.name)).not.toContain('denied');
    } finally {
      once.destroy();
    }
  });

  it('needs s3:TagResource as well to create a bucket with tags', async () => {
    await twin.control.setPolicy({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: ['s3:CreateBucket'], Resource: '*' }] });
    const once = clientsFor(twin, 1);
    try {
      const denied = await errorOf(once.s3.send(new CreateBucketCommand({ Bucket: 'needs-tag-resource', CreateBucketConfiguration: { Tags: tags({ a: 'b' }) } })));
      expect([denied.name, denied.$metadata?.httpStatusCode]).toEqual(['AccessDenied', 403]);
      expect(denied.message).toMatch(/not authorized to perform: s3:TagResource/);
      expect((await twin.control.resources()).buckets.map((b) => b.name)).not.toContain('needs-tag-resource');
      await once.s3.send(new CreateBucketCommand({ Bucket: 'needs-tag-resource' }));
    } finally {
      once.destroy();
    }
  });

  it('lets an explicit Deny win over an Allow', async () => {
    await twin.control.setPolicy({
      Version: '2012-10-17',
      Statement: [{ Effect: 'Allow', Action: '*', Resource: '*' }, { Effect: 'Deny', Action: 'ec2:Run*', Resource: '*' }],
    });
    const denied = await errorOf(clients.ec2.send(new RunInstancesCommand({ ImageId: helper, InstanceType: 't3.micro', MinCount: 1, MaxCount: 1 })));
    expect(denied.name).toBe('UnauthorizedOperation');
    expect(denied.message).toContain('with an explicit deny in an identity-based policy');
  });

  it('checks tag-on-create and iam:PassRole as second actions', async () => {
    const allow = (actions: string[]) => twin.control.setPolicy({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: actions, Resource: '*' }] });
    const run: RunInstancesCommandInput = { ImageId: helper, InstanceType: 't3.micro', MinCount: 1, MaxCount: 1, IamInstanceProfile: { Name: 'sdk-helper' } };
    await allow(['ec2:RunInstances']);
    expect((await errorOf(clients.ec2.send(new RunInstancesCommand(run)))).message).toContain('iam:PassRole');
    await allow(['ec2:RunInstances', 'iam:PassRole']);
    const tagged: RunInstancesCommandInput = { ...run, TagSpecifications: [{ ResourceType: 'instance', Tags: tags({ a: 'b' }) }] };
    expect((await errorOf(clients.ec2.send(new RunInstancesCommand(tagged)))).message).toContain('ec2:CreateTags');
    await allow(['ec2:RunInstances', 'iam:PassRole', 'ec2:CreateTags', 'ec2:TerminateInstances']);
    const { Instances } = await clients.ec2.send(new RunInstancesCommand(tagged));
    await clients.ec2.send(new TerminateInstancesCommand({ InstanceIds: [Instances![0].InstanceId!] }));
  });

  it('holds an instance to its role\'s policies, not the caller\'s', async () => {
    await twin.control.setPolicy(undefined);
    await clients.s3.send(new CreateBucketCommand({ Bucket: 'role-test' }));
    await createHelperProfile(clients, 'narrow', ['sts:GetCallerIdentity']);
    const instanceId = await runInstance(clients, { ImageId: helper, InstanceType: 't3.micro', IamInstanceProfile: { Name: 'narrow' } });
    await waitOnline(clients, instanceId);
    const invocation = await runScript(clients, instanceId, [
      'aws sts get-caller-identity --query Arn --output text',
      'body=$(mktemp); echo x > "$body"',
      'aws s3api put-object --bucket role-test --key k --body "$body"; echo "put exit $?"; rm -f "$body"',
    ]);
    expect(invocation.StandardOutputContent).toContain(`arn:aws:sts::123456789012:assumed-role/narrow/${instanceId}`);
    expect(invocation.StandardOutputContent).toContain('put exit 254');
    expect(invocation.StandardErrorContent).toContain('AccessDenied');
    // The test user, with no policy, may.
    await clients.s3.send(new PutObjectCommand({ Bucket: 'role-test', Key: 'k', Body: 'x' }));
    await clients.ec2.send(new TerminateInstancesCommand({ InstanceIds: [instanceId] }));
  }, 120_000);
});

async function volume(id: string) {
  return (await clients.ec2.send(new DescribeVolumesCommand({ VolumeIds: [id] }))).Volumes![0];
}

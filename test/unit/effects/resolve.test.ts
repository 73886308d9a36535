import { afterAll, beforeEach, describe, expect, it } from '@jest/globals';
import { DescribeImagesCommand, DescribeSubnetsCommand, DescribeVpcsCommand, type Image } from '@aws-sdk/client-ec2';
import { DescribeRepositoriesCommand } from '@aws-sdk/client-ecr';
import { GetInstanceProfileCommand } from '@aws-sdk/client-iam';
import { HeadBucketCommand } from '@aws-sdk/client-s3';
import { GetParameterCommand } from '@aws-sdk/client-ssm';
import { GetCallerIdentityCommand } from '@aws-sdk/client-sts';
import { resolve } from '../../../src/effects/resolve.js';
import { InputError } from '../../../src/effects/errors.js';
import { ACCOUNT, awsError, mocks, plan, resetAll, restoreAll, testContext } from './helpers.js';

const m = mocks();
afterAll(() => restoreAll(m));

/** An EBS AMI whose root is the second mapping, named in the short form, to catch index-0 guesses. */
function image(overrides: Partial<Image> = {}): Image {
  return {
    ImageId: 'ami-0source',
    Name: 'Web Server/2025.10',
    OwnerId: ACCOUNT,
    Architecture: 'arm64',
    CreationDate: '2025-10-01T10:00:00.000Z',
    State: 'available',
    RootDeviceType: 'ebs',
    RootDeviceName: '/dev/xvda',
    BlockDeviceMappings: [
      { DeviceName: '/dev/sdb', Ebs: { SnapshotId: 'snap-data', VolumeSize: 500, Encrypted: false } },
      { DeviceName: 'xvda', Ebs: { SnapshotId: 'snap-root', VolumeSize: 12, Encrypted: true } },
    ],
    ...overrides,
  };
}

function defaultWorld() {
  m.sts.on(GetCallerIdentityCommand).resolves({ Account: ACCOUNT, Arn: `arn:aws:iam::${ACCOUNT}:user/me` });
  m.ec2.on(DescribeImagesCommand).resolves({ Images: [image()] });
  m.ec2.on(DescribeVpcsCommand).resolves({ Vpcs: [{ VpcId: 'vpc-default', IsDefault: true }] });
  m.ec2.on(DescribeSubnetsCommand).resolves({
    Subnets: [
      { SubnetId: 'subnet-b', VpcId: 'vpc-default', AvailabilityZone: 'eu-west-1b' },
      { SubnetId: 'subnet-a', VpcId: 'vpc-default', AvailabilityZone: 'eu-west-1a' },
    ],
  });
  m.ssm.on(GetParameterCommand).callsFake((input: { Name: string }) => ({ Parameter: { Name: input.Name, Value: `ami-helper-for-${input.Name.split('-').pop()}` } }));
}

beforeEach(() => {
  resetAll(m);
  defaultWorld();
});

describe('resolve', () => {
  it('takes the root snapshot by RootDeviceName, not the first mapping, and fills every default', async () => {
    const ctx = testContext();
    const resolved = await resolve({ plan: plan() }, ctx);
    expect(resolved.ami).toEqual({
      id: 'ami-0source',
      name: 'Web Server/2025.10',
      ownerId: ACCOUNT,
      architecture: 'arm64',
      creationDate: '2025-10-01T10:00:00.000Z',
      rootDeviceName: '/dev/xvda',
      snapshotId: 'snap-root',
      volumeSizeGiB: 12,
      encrypted: true,
    });
    expect(resolved.accountId).toBe(ACCOUNT);
    expect(resolved.partition).toBe('aws');
    expect(resolved.subnet).toEqual({ id: 'subnet-a', vpcId: 'vpc-default', availabilityZone: 'eu-west-1a' });
    expect(resolved.helperAmiId).toBe('ami-helper-for-arm64');
    expect(m.ssm.commandCalls(GetParameterCommand)[0].args[0].input.Name).toBe('/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64');
    expect(resolved.instanceType).toBe('c7g.large');
    expect(resolved.repository).toEqual({ name: 'web-server/2025.10', create: true });
    expect(resolved.bucket).toBeUndefined();
    expect(resolved.instanceProfile).toEqual({ name: 'ami2docker-helper', create: true });
    expect(m.ec2.commandCalls(DescribeImagesCommand)[0].args[0].input).toEqual({ ImageIds: ['ami-0source'] });
    const subnetQuery = m.ec2.commandCalls(DescribeSubnetsCommand)[0].args[0].input;
    expect(subnetQuery.Filters).toEqual([{ Name: 'vpc-id', Values: ['vpc-default'] }, { Name: 'default-for-az', Values: ['true'] }]);
    expect(m.ec2.commandCalls(DescribeVpcsCommand)[0].args[0].input.Filters).toEqual([{ Name: 'isDefault', Values: ['true'] }]);
  });

  it('picks an x86_64 instance type and helper for an x86_64 AMI, and reads the partition from the ARN', async () => {
    m.sts.on(GetCallerIdentityCommand).resolves({ Account: ACCOUNT, Arn: `arn:aws-cn:iam::${ACCOUNT}:user/me` });
    m.ec2.on(DescribeImagesCommand).resolves({ Images: [image({ Architecture: 'x86_64' })] });
    const resolved = await resolve({ plan: plan() }, testContext());
    expect(resolved.instanceType).toBe('c7i.large');
    expect(resolved.helperAmiId).toBe('ami-helper-for-x86_64');
    expect(resolved.partition).toBe('aws-cn');
  });

  it('keeps the given instance type and helper AMI id', async () => {
    const resolved = await resolve({ plan: plan({ instanceType: 't4g.small', helperAmi: { id: 'ami-mine' } }) }, testContext());
    expect(resolved.instanceType).toBe('t4g.small');
    expect(resolved.helperAmiId).toBe('ami-mine');
    expect(m.ssm.commandCalls(GetParameterCommand)).toHaveLength(0);
  });

  it('finds a helper AMI by name among Amazon and own images, newest first', async () => {
    m.ec2.on(DescribeImagesCommand, { Owners: ['amazon', 'self'] }).resolves({
      Images: [
        image({ ImageId: 'ami-old', CreationDate: '2024-01-01T00:00:00.000Z' }),
        image({ ImageId: 'ami-new', CreationDate: '2025-06-01T00:00:00.000Z' }),
      ],
    });
    const resolved = await resolve({ plan: plan({ helperAmi: { name: 'al2023-ami-*' } }) }, testContext());
    expect(resolved.helperAmiId).toBe('ami-new');
  });

  it('rejects an instance-store AMI', async () => {
    m.ec2.on(DescribeImagesCommand).resolves({ Images: [image({ RootDeviceType: 'instance-store' })] });
    const attempt = resolve({ plan: plan() }, testContext());
    await expect(attempt).rejects.toBeInstanceOf(InputError);
    await expect(attempt).rejects.toThrow(/instance-store/);
  });

  it('rejects an AMI that is not available, and one that does not exist', async () => {
    m.ec2.on(DescribeImagesCommand).resolves({ Images: [image({ State: 'pending' })] });
    await expect(resolve({ plan: plan() }, testContext())).rejects.toThrow(/state 'pending'/);
    m.ec2.on(DescribeImagesCommand).rejects(awsError('InvalidAMIID.NotFound', "The image id '[ami-0source]' does not exist"));
    const missing = resolve({ plan: plan() }, testContext());
    await expect(missing).rejects.toBeInstanceOf(InputError);
    await expect(missing).rejects.toThrow(/ami-0source was not found in region eu-west-1/);
  });

  it('refuses a name that matches images of different owners, listing the candidates', async () => {
    m.ec2.on(DescribeImagesCommand).resolves({
      Images: [
        image({ ImageId: 'ami-1', OwnerId: '111111111111', CreationDate: '2024-03-01T00:00:00.000Z' }),
        image({ ImageId: 'ami-2', OwnerId: '222222222222', CreationDate: '2024-04-01T00:00:00.000Z' }),
      ],
    });
    const attempt = resolve({ plan: plan({ ami: { name: 'web', owners: [] } }) }, testContext());
    await expect(attempt).rejects.toBeInstanceOf(InputError);
    await expect(attempt).rejects.toThrow(/matches 2 images from different owners: ami-2 \(owner 222222222222, 2024-04-01.*ami-1 \(owner 111111111111.*pass --ami-id or --ami-owner/);
    // Without owners every visible image is searched, as the user asked for no restriction.
    const query = m.ec2.commandCalls(DescribeImagesCommand)[0].args[0].input;
    expect(query.Owners).toBeUndefined();
    expect(query.Filters).toEqual([{ Name: 'name', Values: ['web'] }]);
  });

  it('passes the given owners and picks the newest match of a wildcard name within one owner', async () => {
    m.ec2.on(DescribeImagesCommand).resolves({
      Images: [
        image({ ImageId: 'ami-older', CreationDate: '2024-03-01T00:00:00.000Z' }),
        image({ ImageId: 'ami-newest', CreationDate: '2025-03-01T00:00:00.000Z' }),
        image({ ImageId: 'ami-mid', CreationDate: '2024-09-01T00:00:00.000Z' }),
      ],
    });
    const resolved = await resolve({ plan: plan({ ami: { name: 'web-*', owners: ['self'] } }) }, testContext());
    expect(resolved.ami.id).toBe('ami-newest');
    expect(m.ec2.commandCalls(DescribeImagesCommand)[0].args[0].input.Owners).toEqual(['self']);
  });

  it('does not pick between several images of an exact name', async () => {
    m.ec2.on(DescribeImagesCommand).resolves({ Images: [image({ ImageId: 'ami-a' }), image({ ImageId: 'ami-b' })] });
    await expect(resolve({ plan: plan({ ami: { name: 'web', owners: [] } }) }, testContext())).rejects.toThrow(/matches 2 images: .*pass --ami-id/);
  });

  it('warns when the single match belongs to a stranger, and not for Amazon or the caller', async () => {
    m.ec2.on(DescribeImagesCommand).resolves({ Images: [image({ OwnerId: '999999999999' })] });
    const ctx = testContext();
    await resolve({ plan: plan({ ami: { name: 'web', owners: [] } }) }, ctx);
    const warnings = ctx.reports.filter((r) => r.type === 'warning');
    expect(warnings).toHaveLength(1);
    expect(warnings[0].message).toMatch(/owned by account 999999999999/);

    m.ec2.on(DescribeImagesCommand).resolves({ Images: [image({ OwnerId: '137112412989', ImageOwnerAlias: 'amazon' })] });
    const quiet = testContext();
    await resolve({ plan: plan({ ami: { name: 'web', owners: [] } }) }, quiet);
    expect(quiet.reports.filter((r) => r.type === 'warning')).toEqual([]);
  });

  it('says to pass --subnet-id when the region has no default VPC', async () => {
    m.ec2.on(DescribeVpcsCommand).resolves({ Vpcs: [] });
    const attempt = resolve({ plan: plan() }, testContext());
    await expect(attempt).rejects.toBeInstanceOf(InputError);
    await expect(attempt).rejects.toThrow(/no default VPC in region eu-west-1; pass --subnet-id/);
  });

  it('says to pass --subnet-id when the default VPC has no default subnet', async () => {
    m.ec2.on(DescribeSubnetsCommand).resolves({ Subnets: [] });
    await expect(resolve({ plan: plan() }, testContext())).rejects.toThrow(/no default subnet; pass --subnet-id/);
  });

  it('uses a given subnet as it is', async () => {
    m.ec2.on(DescribeSubnetsCommand, { SubnetIds: ['subnet-mine'] }).resolves({ Subnets: [{ SubnetId: 'subnet-mine', VpcId: 'vpc-mine', AvailabilityZone: 'eu-west-1c' }] });
    const resolved = await resolve({ plan: plan({ subnetId: 'subnet-mine' }) }, testContext());
    expect(resolved.subnet).toEqual({ id: 'subnet-mine', vpcId: 'vpc-mine', availabilityZone: 'eu-west-1c' });
    expect(m.ec2.commandCalls(DescribeVpcsCommand)).toHaveLength(0);
  });

  it('uses a named repository given by URI, with the URI from ECR, and refuses a missing one', async () => {
    m.ecr.on(DescribeRepositoriesCommand, { repositoryNames: ['team/app'] }).resolves({
      repositories: [{ repositoryName: 'team/app', repositoryUri: 'registry.example:5000/team/app', repositoryArn: 'arn' }],
    });
    const resolved = await resolve({ plan: plan({ ecrRepository: `${ACCOUNT}.dkr.ecr.eu-west-1.amazonaws.com/team/app` }) }, testContext());
    expect(resolved.repository).toEqual({ name: 'team/app', uri: 'registry.example:5000/team/app', create: false });

    m.ecr.on(DescribeRepositoriesCommand).rejects(awsError('RepositoryNotFoundException'));
    const missing = resolve({ plan: plan({ ecrRepository: 'nope' }) }, testContext());
    await expect(missing).rejects.toBeInstanceOf(InputError);
    await expect(missing).rejects.toThrow(/repository 'nope' does not exist/);
  });

  it('decides about the output bucket from HeadBucket: missing → create, present → use, foreign → refuse', async () => {
    m.s3.on(HeadBucketCommand).rejects(awsError('NotFound', 'NotFound', 404));
    expect((await resolve({ plan: plan({ ssmBucket: 'out' }) }, testContext())).bucket).toEqual({ name: 'out', create: true });
    m.s3.on(HeadBucketCommand).resolves({});
    expect((await resolve({ plan: plan({ ssmBucket: 'out' }) }, testContext())).bucket).toEqual({ name: 'out', create: false });
    m.s3.on(HeadBucketCommand).rejects(awsError('Forbidden', 'Forbidden', 403));
    const foreign = resolve({ plan: plan({ ssmBucket: 'out' }) }, testContext());
    await expect(foreign).rejects.toBeInstanceOf(InputError);
    await expect(foreign).rejects.toThrow(/another account/);
    m.s3.on(HeadBucketCommand).rejects(awsError('PermanentRedirect', 'moved', 301));
    await expect(resolve({ plan: plan({ ssmBucket: 'out' }) }, testContext())).rejects.toThrow(/in another region than eu-west-1/);
  });

  it('requires a named instance profile to exist', async () => {
    m.iam.on(GetInstanceProfileCommand, { InstanceProfileName: 'mine' }).resolves({ InstanceProfile: { InstanceProfileName: 'mine' } as never });
    expect((await resolve({ plan: plan({ instanceProfile: 'mine' }) }, testContext())).instanceProfile).toEqual({ name: 'mine', create: false });
    m.iam.on(GetInstanceProfileCommand).rejects(awsError('NoSuchEntityException', 'Instance Profile x cannot be found', 404));
    const missing = resolve({ plan: plan({ instanceProfile: 'gone' }) }, testContext());
    await expect(missing).rejects.toBeInstanceOf(InputError);
    await expect(missing).rejects.toThrow(/instance profile 'gone' does not exist/);
  });

  it('passes AWS failures through unchanged', async () => {
    m.sts.on(GetCallerIdentityCommand).rejects(awsError('ExpiredToken', 'The security token included in the request is expired', 403));
    await expect(resolve({ plan: plan() }, testContext())).rejects.toMatchObject({ name: 'ExpiredToken' });
  });
});

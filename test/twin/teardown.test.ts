// The calls a teardown makes, through the SDK: S3 buckets with tags and objects, IAM roles and
// profiles taken apart in AWS's required order, ECR repositories and their tags, and finding a
// command again with ListCommands. Each refuses what AWS refuses.
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { GetAuthorizationTokenCommand, CreateRepositoryCommand, DescribeRepositoriesCommand, ListTagsForResourceCommand, DeleteRepositoryCommand } from '@aws-sdk/client-ecr';
import {
  AttachRolePolicyCommand, DeleteInstanceProfileCommand, DeleteRoleCommand, DeleteRolePolicyCommand, DetachRolePolicyCommand, GetRolePolicyCommand,
  ListAttachedRolePoliciesCommand, ListInstanceProfilesForRoleCommand, ListRolePoliciesCommand, RemoveRoleFromInstanceProfileCommand,
} from '@aws-sdk/client-iam';
import {
  CreateBucketCommand, DeleteBucketCommand, DeleteObjectsCommand, GetBucketTaggingCommand, GetObjectCommand, HeadBucketCommand, ListObjectsV2Command,
  PutBucketTaggingCommand, PutObjectCommand,
} from '@aws-sdk/client-s3';
import { ListCommandsCommand, SendCommandCommand } from '@aws-sdk/client-ssm';
import { Readable } from 'node:stream';
import { startTwin, type RunningTwin } from '../support/twin.js';
import { clientsFor, createHelperProfile, finalInvocation, helperImageId, runInstance, waitOnline, type Clients } from './harness.js';

jest.setTimeout(60_000);

let twin: RunningTwin;
let clients: Clients;

beforeAll(async () => {
  twin = await startTwin({ timeScale: 0.02 });
  clients = clientsFor(twin);
});

afterAll(async () => {
  clients?.destroy();
  await twin?.stop();
});

// The SDK names modeled IAM errors after their shapes: NoSuchEntity arrives as NoSuchEntityException.
const failure = (promise: Promise<unknown>) => promise.then(
  () => { throw new Error('expected the call to fail'); },
  (error: Error & { $metadata?: { httpStatusCode?: number } }) => ({ name: error.name, status: error.$metadata?.httpStatusCode }),
);

describe('S3', () => {
  it('creates, tags, fills, lists, empties and deletes a bucket', async () => {
    expect(await failure(clients.s3.send(new HeadBucketCommand({ Bucket: 'run-output' })))).toEqual({ name: 'NotFound', status: 404 });
    await clients.s3.send(new CreateBucketCommand({ Bucket: 'run-output' }));
    // In us-east-1 creating a bucket you already own succeeds again.
    await clients.s3.send(new CreateBucketCommand({ Bucket: 'run-output' }));
    const head = await clients.s3.send(new HeadBucketCommand({ Bucket: 'run-output' }));
    expect(head.BucketRegion).toBe('us-east-1');

    expect(await failure(clients.s3.send(new GetBucketTaggingCommand({ Bucket: 'run-output' })))).toEqual({ name: 'NoSuchTagSet', status: 404 });
    await clients.s3.send(new PutBucketTaggingCommand({ Bucket: 'run-output', Tagging: { TagSet: [{ Key: 'ami2docker:created-by', Value: 'ami2docker' }] } }));
    expect((await clients.s3.send(new GetBucketTaggingCommand({ Bucket: 'run-output' }))).TagSet).toEqual([{ Key: 'ami2docker:created-by', Value: 'ami2docker' }]);

    await clients.s3.send(new PutObjectCommand({ Bucket: 'run-output', Key: 'ami2docker/r1/a/stdout', Body: 'one' }));
    // A stream goes up aws-chunked, with its checksum in a trailer.
    await clients.s3.send(new PutObjectCommand({
      Bucket: 'run-output', Key: 'ami2docker/r1/b/stdout', ContentLength: 3, Body: Readable.from([Buffer.from('tw'), Buffer.from('o')]),
    }));
    await clients.s3.send(new PutObjectCommand({ Bucket: 'run-output', Key: 'elsewhere', Body: 'x' }));
    const object = await clients.s3.send(new GetObjectCommand({ Bucket: 'run-output', Key: 'ami2docker/r1/b/stdout' }));
    expect(await object.Body!.transformToString()).toBe('two');
    const listed = await clients.s3.send(new ListObjectsV2Command({ Bucket: 'run-output', Prefix: 'ami2docker/r1/' }));
    expect(listed.Contents!.map((c) => [c.Key, c.Size])).toEqual([['ami2docker/r1/a/stdout', 3], ['ami2docker/r1/b/stdout', 3]]);
    const grouped = await clients.s3.send(new ListObjectsV2Command({ Bucket: 'run-output', Delimiter: '/' }));
    expect([grouped.CommonPrefixes!.map((p) => p.Prefix), grouped.Contents!.map((c) => c.Key)]).toEqual([['ami2docker/'], ['elsewhere']]);

    expect(await failure(clients.s3.send(new DeleteBucketCommand({ Bucket: 'run-output' })))).toEqual({ name: 'BucketNotEmpty', status: 409 });
    const deleted = await clients.s3.send(new DeleteObjectsCommand({
      Bucket: 'run-output',
      Delete: { Objects: [{ Key: 'ami2docker/r1/a/stdout' }, { Key: 'ami2docker/r1/b/stdout' }, { Key: 'elsewhere' }] },
    }));
    expect(deleted.Deleted!.map((d) => d.Key)).toHaveLength(3);
    await clients.s3.send(new DeleteBucketCommand({ Bucket: 'run-output' }));
    expect((await twin.control.resources()).buckets).toEqual([]);
  });
});

describe('IAM', () => {
  it('takes a role apart only in the order AWS requires', async () => {
    await createHelperProfile(clients, 'teardown', ['s3:PutObject']);
    await clients.iam.send(new AttachRolePolicyCommand({ RoleName: 'teardown', PolicyArn: 'arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryPowerUser' }));
    expect(await failure(clients.iam.send(new AttachRolePolicyCommand({ RoleName: 'teardown', PolicyArn: 'arn:aws:iam::aws:policy/NoSuchPolicy' }))))
      .toEqual({ name: 'NoSuchEntityException', status: 404 });

    const attached = await clients.iam.send(new ListAttachedRolePoliciesCommand({ RoleName: 'teardown' }));
    expect(attached.AttachedPolicies!.map((p) => p.PolicyName)).toEqual(['AmazonSSMManagedInstanceCore', 'AmazonEC2ContainerRegistryPowerUser']);
    expect((await clients.iam.send(new ListRolePoliciesCommand({ RoleName: 'teardown' }))).PolicyNames).toEqual(['extra']);
    const inline = await clients.iam.send(new GetRolePolicyCommand({ RoleName: 'teardown', PolicyName: 'extra' }));
    // IAM sends policy documents URL-encoded; the JavaScript SDK leaves them so.
    expect(JSON.parse(decodeURIComponent(inline.PolicyDocument!)).Statement[0].Action).toEqual(['s3:PutObject']);
    const profiles = await clients.iam.send(new ListInstanceProfilesForRoleCommand({ RoleName: 'teardown' }));
    expect(profiles.InstanceProfiles!.map((p) => p.InstanceProfileName)).toEqual(['teardown']);

    const deleteRole = () => clients.iam.send(new DeleteRoleCommand({ RoleName: 'teardown' }));
    expect(await failure(deleteRole())).toEqual({ name: 'DeleteConflictException', status: 409 });
    for (const policy of attached.AttachedPolicies!) await clients.iam.send(new DetachRolePolicyCommand({ RoleName: 'teardown', PolicyArn: policy.PolicyArn }));
    expect(await failure(deleteRole())).toEqual({ name: 'DeleteConflictException', status: 409 });
    await clients.iam.send(new DeleteRolePolicyCommand({ RoleName: 'teardown', PolicyName: 'extra' }));
    expect(await failure(deleteRole())).toEqual({ name: 'DeleteConflictException', status: 409 });
    expect(await failure(clients.iam.send(new DeleteInstanceProfileCommand({ InstanceProfileName: 'teardown' })))).toEqual({ name: 'DeleteConflictException', status: 409 });
    await clients.iam.send(new RemoveRoleFromInstanceProfileCommand({ InstanceProfileName: 'teardown', RoleName: 'teardown' }));
    await clients.iam.send(new DeleteInstanceProfileCommand({ InstanceProfileName: 'teardown' }));
    await deleteRole();
    const left = await twin.control.resources();
    expect([left.roles, left.instanceProfiles]).toEqual([[], []]);
  });
});

describe('ECR', () => {
  it('keeps repository tags, hands out a registry token, and refuses what does not exist', async () => {
    const name = `teardown-${process.pid}`;
    const { repository } = await clients.ecr.send(new CreateRepositoryCommand({ repositoryName: name, tags: [{ Key: 'ami2docker:run-id', Value: 'r1' }] }));
    expect((await failure(clients.ecr.send(new CreateRepositoryCommand({ repositoryName: name })))).name).toBe('RepositoryAlreadyExistsException');
    const { tags } = await clients.ecr.send(new ListTagsForResourceCommand({ resourceArn: repository!.repositoryArn }));
    expect(tags).toEqual([{ Key: 'ami2docker:run-id', Value: 'r1' }]);
    const { authorizationData } = await clients.ecr.send(new GetAuthorizationTokenCommand({}));
    const [user, password] = Buffer.from(authorizationData![0].authorizationToken!, 'base64').toString().split(':');
    expect([user, password.length > 0, authorizationData![0].proxyEndpoint]).toEqual(['AWS', true, `http://${process.env.AMI2DOCKER_TEST_REGISTRY ?? '127.0.0.1:5000'}`]);
    await clients.ecr.send(new DeleteRepositoryCommand({ repositoryName: name }));
    expect((await failure(clients.ecr.send(new DescribeRepositoriesCommand({ repositoryNames: [name] })))).name).toBe('RepositoryNotFoundException');
  });
});

describe('SSM', () => {
  it('finds commands again by instance with ListCommands', async () => {
    await createHelperProfile(clients, 'lister');
    const instanceId = await runInstance(clients, { ImageId: await helperImageId(clients), InstanceType: 't3.micro', IamInstanceProfile: { Name: 'lister' } });
    await waitOnline(clients, instanceId);
    const { Command } = await clients.ssm.send(new SendCommandCommand({
      InstanceIds: [instanceId], DocumentName: 'AWS-RunShellScript', Comment: 'ami2docker r1', Parameters: { commands: ['true'] },
    }));
    const pending = await clients.ssm.send(new ListCommandsCommand({ InstanceId: instanceId }));
    expect(pending.Commands!.map((c) => [c.CommandId, c.Comment])).toEqual([[Command!.CommandId, 'ami2docker r1']]);
    await finalInvocation(clients, Command!.CommandId!, instanceId);
    const done = await clients.ssm.send(new ListCommandsCommand({ CommandId: Command!.CommandId }));
    expect(done.Commands![0]).toMatchObject({ Status: 'Success', CompletedCount: 1, ErrorCount: 0, TargetCount: 1 });
    expect((await clients.ssm.send(new ListCommandsCommand({ InstanceId: instanceId, Filters: [{ key: 'Status', value: 'Failed' }] }))).Commands).toEqual([]);
  });
});

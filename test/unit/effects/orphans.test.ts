import { afterAll, beforeEach, describe, expect, it } from '@jest/globals';
import { DescribeInstancesCommand, DescribeSecurityGroupsCommand, DescribeVolumesCommand } from '@aws-sdk/client-ec2';
import { DeleteRepositoryCommand, DescribeRepositoriesCommand, ListTagsForResourceCommand } from '@aws-sdk/client-ecr';
import {
  DeleteInstanceProfileCommand,
  DeleteRoleCommand,
  DeleteRolePolicyCommand,
  DetachRolePolicyCommand,
  GetInstanceProfileCommand,
  GetRoleCommand,
  ListAttachedRolePoliciesCommand,
  ListInstanceProfilesForRoleCommand,
  ListRolePoliciesCommand,
  RemoveRoleFromInstanceProfileCommand,
} from '@aws-sdk/client-iam';
import { DeleteBucketCommand, DeleteObjectsCommand, GetBucketTaggingCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { findTaggedResources, removeReusable } from '../../../src/effects/orphans.js';
import { tagList } from '../../../src/machine/names.js';
import { TAGS, awsError, mocks, resetAll, restoreAll, testContext } from './helpers.js';

const m = mocks();
afterAll(() => restoreAll(m));
beforeEach(() => resetAll(m));

const OURS = [{ Key: 'ami2docker:created-by', Value: 'ami2docker' }];

describe('findTaggedResources', () => {
  it('lists live instances, volumes and groups carrying a run id, across pages', async () => {
    m.ec2.on(DescribeInstancesCommand).resolves({ Reservations: [{ Instances: [{ InstanceId: 'i-1', State: { Name: 'running' }, Tags: tagList(TAGS), LaunchTime: new Date('2026-01-01T12:01:00Z') }] }] });
    m.ec2.on(DescribeVolumesCommand)
      .resolvesOnce({ Volumes: [{ VolumeId: 'vol-1', State: 'available', Tags: tagList(TAGS), CreateTime: new Date('2026-01-01T12:02:00Z') }], NextToken: 'next' })
      .resolves({ Volumes: [{ VolumeId: 'vol-2', State: 'in-use', Tags: [{ Key: 'ami2docker:run-id', Value: 'older-run' }] }] });
    m.ec2.on(DescribeSecurityGroupsCommand).resolves({ SecurityGroups: [{ GroupId: 'sg-1', Tags: tagList(TAGS) }] });
    expect(await findTaggedResources({}, testContext())).toEqual([
      { kind: 'instance', id: 'i-1', runId: TAGS.runId, expiresAt: TAGS.expiresAt, state: 'running', createdAt: '2026-01-01T12:01:00.000Z' },
      { kind: 'volume', id: 'vol-1', runId: TAGS.runId, expiresAt: TAGS.expiresAt, state: 'available', createdAt: '2026-01-01T12:02:00.000Z' },
      { kind: 'volume', id: 'vol-2', runId: 'older-run', state: 'in-use' },
      { kind: 'security-group', id: 'sg-1', runId: TAGS.runId, expiresAt: TAGS.expiresAt, state: 'exists' },
    ]);
    const instanceFilters = m.ec2.commandCalls(DescribeInstancesCommand)[0].args[0].input.Filters;
    expect(instanceFilters).toContainEqual({ Name: 'tag-key', Values: ['ami2docker:run-id'] });
    expect(instanceFilters?.find((f) => f.Name === 'instance-state-name')?.Values).not.toContain('terminated');
    expect(m.ec2.commandCalls(DescribeVolumesCommand)[1].args[0].input.NextToken).toBe('next');
  });
});

describe('removeReusable', () => {
  it('takes apart a role and profile this tool created, profile first', async () => {
    m.iam.on(GetInstanceProfileCommand).resolves({ InstanceProfile: { InstanceProfileName: 'ami2docker-helper', Tags: OURS, Roles: [{ RoleName: 'ami2docker-helper' }] } as never });
    m.iam.on(GetRoleCommand).resolves({ Role: { RoleName: 'ami2docker-helper', Tags: OURS } as never });
    m.iam.on(ListAttachedRolePoliciesCommand).resolves({ AttachedPolicies: [{ PolicyArn: 'arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore' }] });
    m.iam.on(ListRolePoliciesCommand).resolves({ PolicyNames: ['ami2docker-run-a', 'ami2docker-run-b'] });
    m.iam.on(ListInstanceProfilesForRoleCommand).resolves({ InstanceProfiles: [] });
    const result = await removeReusable({ roleName: 'ami2docker-helper', instanceProfileName: 'ami2docker-helper' }, testContext());
    expect(result).toEqual({ removed: ['instance profile ami2docker-helper', 'role ami2docker-helper'], skipped: [] });
    expect(m.iam.commandCalls(RemoveRoleFromInstanceProfileCommand)[0].args[0].input).toEqual({ InstanceProfileName: 'ami2docker-helper', RoleName: 'ami2docker-helper' });
    expect(m.iam.commandCalls(DetachRolePolicyCommand)).toHaveLength(1);
    expect(m.iam.commandCalls(DeleteRolePolicyCommand).map((c) => c.args[0].input.PolicyName)).toEqual(['ami2docker-run-a', 'ami2docker-run-b']);
    const order = m.iam.calls().map((c) => c.args[0].constructor.name);
    expect(order.indexOf('DeleteInstanceProfileCommand')).toBeLessThan(order.indexOf('DeleteRoleCommand'));
  });

  it('leaves alone what lacks the created-by tag, and what is already gone', async () => {
    m.iam.on(GetRoleCommand).resolves({ Role: { RoleName: 'someones-role', Tags: [] } as never });
    m.iam.on(GetInstanceProfileCommand).rejects(awsError('NoSuchEntityException', 'gone', 404));
    m.ecr.on(DescribeRepositoriesCommand).resolves({ repositories: [{ repositoryName: 'team/web', repositoryArn: 'arn:repo' }] });
    m.ecr.on(ListTagsForResourceCommand).resolves({ tags: [] });
    m.s3.on(GetBucketTaggingCommand).rejects(awsError('NoSuchTagSet', 'none', 404));
    const result = await removeReusable({ roleName: 'someones-role', instanceProfileName: 'gone', repositoryName: 'team/web', bucket: 'theirs' }, testContext());
    expect(result.removed).toEqual([]);
    expect(result.skipped.map((s) => s.resource)).toEqual(['role someones-role', 'repository team/web', 'bucket theirs']);
    expect(m.iam.commandCalls(DeleteRoleCommand)).toHaveLength(0);
    expect(m.iam.commandCalls(DeleteInstanceProfileCommand)).toHaveLength(0);
    expect(m.ecr.commandCalls(DeleteRepositoryCommand)).toHaveLength(0);
    expect(m.s3.commandCalls(DeleteBucketCommand)).toHaveLength(0);
  });

  it('force-deletes its own repository', async () => {
    m.ecr.on(DescribeRepositoriesCommand).resolves({ repositories: [{ repositoryName: 'team/web', repositoryArn: 'arn:repo' }] });
    m.ecr.on(ListTagsForResourceCommand).resolves({ tags: OURS });
    m.ecr.on(DeleteRepositoryCommand).resolves({});
    expect(await removeReusable({ repositoryName: 'team/web' }, testContext())).toEqual({ removed: ['repository team/web'], skipped: [] });
    expect(m.ecr.commandCalls(DeleteRepositoryCommand)[0].args[0].input).toEqual({ repositoryName: 'team/web', force: true });
  });

  it('empties only ami2docker/ of its own bucket, and deletes the bucket only when nothing else is in it', async () => {
    m.s3.on(GetBucketTaggingCommand).resolves({ TagSet: OURS });
    m.s3.on(ListObjectsV2Command, { Prefix: 'ami2docker/' })
      .resolvesOnce({ Contents: [{ Key: 'ami2docker/r1/stdout' }, { Key: 'ami2docker/r2/stdout' }] })
      .resolves({ Contents: [] });
    m.s3.on(ListObjectsV2Command, { Prefix: undefined, MaxKeys: 1 }).resolvesOnce({ Contents: [] }).resolves({ Contents: [{ Key: 'users-file' }] });
    m.s3.on(DeleteObjectsCommand).resolves({});
    m.s3.on(DeleteBucketCommand).resolves({});
    expect(await removeReusable({ bucket: 'out' }, testContext())).toEqual({ removed: ['bucket out'], skipped: [] });
    expect(m.s3.commandCalls(DeleteObjectsCommand)[0].args[0].input.Delete?.Objects).toEqual([{ Key: 'ami2docker/r1/stdout' }, { Key: 'ami2docker/r2/stdout' }]);

    const second = await removeReusable({ bucket: 'out' }, testContext());
    expect(second).toEqual({ removed: [], skipped: [{ resource: 'bucket out', reason: 'it holds objects outside ami2docker/' }] });
    expect(m.s3.commandCalls(DeleteBucketCommand)).toHaveLength(1);
  });
});

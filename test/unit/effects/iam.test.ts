import { afterAll, beforeEach, describe, expect, it } from '@jest/globals';
import {
  AddRoleToInstanceProfileCommand,
  AttachRolePolicyCommand,
  CreateInstanceProfileCommand,
  CreateRoleCommand,
  DeleteRolePolicyCommand,
  GetInstanceProfileCommand,
  GetRoleCommand,
  PutRolePolicyCommand,
} from '@aws-sdk/client-iam';
import { ensureHelperRole, removeRunPolicy, runPolicyDocument } from '../../../src/effects/iam.js';
import type { EnsureHelperRoleInput, Resolved } from '../../../src/machine/types.js';
import { ACCOUNT, TAGS, awsError, mocks, plan, resetAll, restoreAll, tagKeys, testContext } from './helpers.js';

const m = mocks();
afterAll(() => restoreAll(m));
beforeEach(() => resetAll(m));

const resolved = {
  accountId: ACCOUNT,
  partition: 'aws',
  repository: { name: 'team/web', create: true },
  bucket: { name: 'out-bucket', create: true },
} as Resolved;

const input = (overrides: Partial<EnsureHelperRoleInput> = {}): EnsureHelperRoleInput => ({
  plan: plan(),
  resolved,
  roleName: 'ami2docker-helper',
  instanceProfileName: 'ami2docker-helper',
  runPolicyName: `ami2docker-run-${TAGS.runId}`,
  ...overrides,
});

describe('runPolicyDocument', () => {
  const scope = { partition: 'aws', region: 'eu-west-1', accountId: ACCOUNT, repositoryName: 'team/web', runId: TAGS.runId };

  it('grants push on one repository, login on *, and writes to the run prefix only', () => {
    const document = runPolicyDocument({ ...scope, bucket: 'out-bucket' });
    expect(document.Statement).toEqual([
      { Sid: 'RegistryLogin', Effect: 'Allow', Action: 'ecr:GetAuthorizationToken', Resource: '*' },
      {
        Sid: 'PushToOneRepository',
        Effect: 'Allow',
        Action: ['ecr:BatchCheckLayerAvailability', 'ecr:InitiateLayerUpload', 'ecr:UploadLayerPart', 'ecr:CompleteLayerUpload', 'ecr:PutImage', 'ecr:BatchGetImage'],
        Resource: `arn:aws:ecr:eu-west-1:${ACCOUNT}:repository/team/web`,
      },
      { Sid: 'WriteCommandOutput', Effect: 'Allow', Action: 's3:PutObject', Resource: `arn:aws:s3:::out-bucket/ami2docker/${TAGS.runId}/*` },
      { Sid: 'LocateOutputBucket', Effect: 'Allow', Action: ['s3:GetBucketLocation', 's3:GetEncryptionConfiguration'], Resource: 'arn:aws:s3:::out-bucket' },
    ]);
  });

  it('never grants a wildcard action, and `*` only to GetAuthorizationToken', () => {
    for (const statement of runPolicyDocument({ ...scope, bucket: 'b' }).Statement) {
      const actions = ([] as string[]).concat(statement.Action);
      expect(actions.some((action) => action.includes('*'))).toBe(false);
      if (([] as string[]).concat(statement.Resource).includes('*')) expect(actions).toEqual(['ecr:GetAuthorizationToken']);
    }
  });

  it('leaves S3 out without a bucket and follows the partition', () => {
    const document = runPolicyDocument({ ...scope, partition: 'aws-cn' });
    expect(document.Statement.map((s) => s.Sid)).toEqual(['RegistryLogin', 'PushToOneRepository']);
    expect(document.Statement[1].Resource).toBe(`arn:aws-cn:ecr:eu-west-1:${ACCOUNT}:repository/team/web`);
  });
});

describe('ensureHelperRole', () => {
  it('creates the role, profile and run policy, all tagged at creation', async () => {
    m.iam.on(GetRoleCommand).rejects(awsError('NoSuchEntityException', 'role not found', 404));
    m.iam.on(CreateRoleCommand).resolves({ Role: { RoleName: 'ami2docker-helper' } as never });
    m.iam.on(GetInstanceProfileCommand).rejects(awsError('NoSuchEntityException', 'profile not found', 404));
    m.iam.on(CreateInstanceProfileCommand).resolves({ InstanceProfile: { InstanceProfileName: 'ami2docker-helper', Roles: [] } as never });
    const output = await ensureHelperRole(input(), testContext());
    expect(output).toEqual({ roleName: 'ami2docker-helper', instanceProfileName: 'ami2docker-helper', runPolicyName: `ami2docker-run-${TAGS.runId}`, roleCreated: true });

    const role = m.iam.commandCalls(CreateRoleCommand)[0].args[0].input;
    expect(JSON.parse(role.AssumeRolePolicyDocument ?? '{}').Statement).toEqual([{ Effect: 'Allow', Principal: { Service: 'ec2.amazonaws.com' }, Action: 'sts:AssumeRole' }]);
    expect(tagKeys(role.Tags)).toEqual(['Name', 'ami2docker:created-by', 'ami2docker:run-id']);
    expect(tagKeys(m.iam.commandCalls(CreateInstanceProfileCommand)[0].args[0].input.Tags)).toEqual(['Name', 'ami2docker:created-by', 'ami2docker:run-id']);
    expect(m.iam.commandCalls(AttachRolePolicyCommand)[0].args[0].input).toEqual({ RoleName: 'ami2docker-helper', PolicyArn: 'arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore' });
    const put = m.iam.commandCalls(PutRolePolicyCommand)[0].args[0].input;
    expect(put.PolicyName).toBe(`ami2docker-run-${TAGS.runId}`);
    expect(JSON.parse(put.PolicyDocument ?? '{}')).toEqual(runPolicyDocument({
      partition: 'aws', region: 'eu-west-1', accountId: ACCOUNT, repositoryName: 'team/web', runId: TAGS.runId, bucket: 'out-bucket',
    }));
    expect(m.iam.commandCalls(AddRoleToInstanceProfileCommand)[0].args[0].input).toEqual({ InstanceProfileName: 'ami2docker-helper', RoleName: 'ami2docker-helper' });
  });

  it('reuses an existing role and profile that already holds it', async () => {
    m.iam.on(GetRoleCommand).resolves({ Role: { RoleName: 'ami2docker-helper', Tags: [{ Key: 'ami2docker:run-id', Value: 'an-older-run' }] } as never });
    m.iam.on(GetInstanceProfileCommand).resolves({ InstanceProfile: { InstanceProfileName: 'ami2docker-helper', Roles: [{ RoleName: 'ami2docker-helper' }] } as never });
    const output = await ensureHelperRole(input(), testContext());
    expect(output.roleCreated).toBe(false);
    expect(m.iam.commandCalls(CreateRoleCommand)).toHaveLength(0);
    expect(m.iam.commandCalls(CreateInstanceProfileCommand)).toHaveLength(0);
    expect(m.iam.commandCalls(AddRoleToInstanceProfileCommand)).toHaveLength(0);
    expect(m.iam.commandCalls(PutRolePolicyCommand)).toHaveLength(1);
  });

  it('counts a role made by an earlier attempt of this run as created, and accepts LimitExceeded on re-adding', async () => {
    m.iam.on(GetRoleCommand).resolves({ Role: { RoleName: 'ami2docker-helper', Tags: [{ Key: 'ami2docker:run-id', Value: TAGS.runId }] } as never });
    m.iam.on(GetInstanceProfileCommand).resolves({ InstanceProfile: { InstanceProfileName: 'ami2docker-helper', Roles: [] } as never });
    m.iam.on(AddRoleToInstanceProfileCommand).rejects(awsError('LimitExceededException', 'Cannot exceed quota for InstanceSessionsPerInstanceProfile: 1', 409));
    expect((await ensureHelperRole(input(), testContext())).roleCreated).toBe(true);
  });
});

describe('removeRunPolicy', () => {
  it('deletes the run policy and tolerates its absence', async () => {
    m.iam.on(DeleteRolePolicyCommand).resolvesOnce({}).rejects(awsError('NoSuchEntityException', 'gone', 404));
    const policy = { roleName: 'ami2docker-helper', runPolicyName: 'ami2docker-run-x' };
    expect(await removeRunPolicy(policy, testContext())).toEqual({ removed: ['ami2docker-run-x'] });
    expect(await removeRunPolicy(policy, testContext())).toEqual({ removed: [] });
  });
});

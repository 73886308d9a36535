// The helper's identity: a reusable role + instance profile, and one least-privilege inline policy
// per run that grants exactly what the conversion needs (push to one repository, write one prefix).
import {
  AddRoleToInstanceProfileCommand,
  AttachRolePolicyCommand,
  CreateInstanceProfileCommand,
  CreateRoleCommand,
  DeleteRolePolicyCommand,
  GetInstanceProfileCommand,
  GetRoleCommand,
  PutRolePolicyCommand,
  type InstanceProfile,
  type Role,
} from '@aws-sdk/client-iam';
import { outputPrefix, resourceTags } from '../machine/names.js';
import type {
  EnsureHelperRoleInput,
  EnsureHelperRoleOutput,
  RemovedOutput,
  RemoveRunPolicyInput,
} from '../machine/types.js';
import type { EffectContext } from './context.js';
import { InputError, hasAwsCode, unlessCode } from './errors.js';
import { carriesRunId, reusableTagList } from './tags.js';
import { sendOptions } from './wait.js';

export const ECR_PUSH_ACTIONS = [
  'ecr:BatchCheckLayerAvailability',
  'ecr:InitiateLayerUpload',
  'ecr:UploadLayerPart',
  'ecr:CompleteLayerUpload',
  'ecr:PutImage',
  'ecr:BatchGetImage',
] as const;

export const ssmManagedPolicyArn = (partition: string) => `arn:${partition}:iam::aws:policy/AmazonSSMManagedInstanceCore`;

export function helperTrustPolicy(): string {
  return JSON.stringify({
    Version: '2012-10-17',
    Statement: [{ Effect: 'Allow', Principal: { Service: 'ec2.amazonaws.com' }, Action: 'sts:AssumeRole' }],
  });
}

export interface RunPolicyScope {
  partition: string;
  region: string;
  accountId: string;
  repositoryName: string;
  runId: string;
  bucket?: string;
}

export interface PolicyDocument {
  Version: '2012-10-17';
  Statement: { Sid: string; Effect: 'Allow'; Action: string | string[]; Resource: string | string[] }[];
}

/** The run's inline policy. GetAuthorizationToken has no resource-level scoping, so it alone is on `*`. */
export function runPolicyDocument(scope: RunPolicyScope): PolicyDocument {
  const { partition, region, accountId, repositoryName, runId, bucket } = scope;
  const statements: PolicyDocument['Statement'] = [
    { Sid: 'RegistryLogin', Effect: 'Allow', Action: 'ecr:GetAuthorizationToken', Resource: '*' },
    {
      Sid: 'PushToOneRepository',
      Effect: 'Allow',
      Action: [...ECR_PUSH_ACTIONS],
      Resource: `arn:${partition}:ecr:${region}:${accountId}:repository/${repositoryName}`,
    },
  ];
  if (bucket) {
    statements.push({
      Sid: 'WriteCommandOutput',
      Effect: 'Allow',
      Action: 's3:PutObject',
      Resource: `arn:${partition}:s3:::${bucket}/${outputPrefix(runId)}*`,
    });
    // The SSM agent asks for the bucket's region and encryption before it uploads the output.
    statements.push({
      Sid: 'LocateOutputBucket',
      Effect: 'Allow',
      Action: ['s3:GetBucketLocation', 's3:GetEncryptionConfiguration'],
      Resource: `arn:${partition}:s3:::${bucket}`,
    });
  }
  return { Version: '2012-10-17', Statement: statements };
}

async function ensureRole(input: EnsureHelperRoleInput, ctx: EffectContext): Promise<{ role: Role; created: boolean }> {
  const { iam } = ctx.clients;
  const { plan, roleName } = input;
  const found = await unlessCode(() => iam.send(new GetRoleCommand({ RoleName: roleName }), sendOptions(ctx)), 'NoSuchEntity');
  // A role carrying this run's id was made by an earlier attempt of this very run.
  if (found?.Role) return { role: found.Role, created: carriesRunId(found.Role.Tags, plan.runId) };
  try {
    const created = await iam.send(new CreateRoleCommand({
      RoleName: roleName,
      AssumeRolePolicyDocument: helperTrustPolicy(),
      Description: 'ami2docker helper instance: SSM managed, pushes converted images to ECR',
      Tags: reusableTagList(resourceTags(plan.runId, plan.expiresAt, roleName)),
    }), sendOptions(ctx));
    return { role: created.Role!, created: true };
  } catch (error) {
    if (!hasAwsCode(error, 'EntityAlreadyExists')) throw error;
    const raced = await iam.send(new GetRoleCommand({ RoleName: roleName }), sendOptions(ctx));
    return { role: raced.Role!, created: false };
  }
}

async function ensureInstanceProfile(input: EnsureHelperRoleInput, ctx: EffectContext): Promise<InstanceProfile> {
  const { iam } = ctx.clients;
  const name = input.instanceProfileName;
  const get = () => iam.send(new GetInstanceProfileCommand({ InstanceProfileName: name }), sendOptions(ctx));
  const found = await unlessCode(get, 'NoSuchEntity');
  if (found?.InstanceProfile) return found.InstanceProfile;
  const created = await unlessCode(() => iam.send(new CreateInstanceProfileCommand({
    InstanceProfileName: name,
    Tags: reusableTagList(resourceTags(input.plan.runId, input.plan.expiresAt, name)),
  }), sendOptions(ctx)), 'EntityAlreadyExists');
  return created?.InstanceProfile ?? (await get()).InstanceProfile!;
}

export async function ensureHelperRole(input: EnsureHelperRoleInput, ctx: EffectContext): Promise<EnsureHelperRoleOutput> {
  const { iam } = ctx.clients;
  const { plan, resolved, roleName, runPolicyName } = input;
  const { created } = await ensureRole(input, ctx);
  await iam.send(new AttachRolePolicyCommand({ RoleName: roleName, PolicyArn: ssmManagedPolicyArn(resolved.partition) }), sendOptions(ctx));
  const policy = runPolicyDocument({
    partition: resolved.partition,
    region: plan.region,
    accountId: resolved.accountId,
    repositoryName: resolved.repository.name,
    runId: plan.runId,
    bucket: resolved.bucket?.name,
  });
  await iam.send(new PutRolePolicyCommand({ RoleName: roleName, PolicyName: runPolicyName, PolicyDocument: JSON.stringify(policy) }), sendOptions(ctx));
  const profile = await ensureInstanceProfile(input, ctx);
  if (!(profile.Roles ?? []).some((role) => role.RoleName === roleName)) {
    // LimitExceeded: the profile already holds its one role (ours, added by an earlier attempt).
    await unlessCode(() => iam.send(new AddRoleToInstanceProfileCommand({
      InstanceProfileName: input.instanceProfileName,
      RoleName: roleName,
    }), sendOptions(ctx)), 'LimitExceeded');
  }
  return { roleName, instanceProfileName: input.instanceProfileName, runPolicyName, roleCreated: created };
}

/** An instance profile the user named must exist; the run then uses it as it is. */
export async function requireInstanceProfile(name: string, ctx: EffectContext): Promise<void> {
  const found = await unlessCode(() => ctx.clients.iam.send(new GetInstanceProfileCommand({ InstanceProfileName: name }), sendOptions(ctx)), 'NoSuchEntity');
  if (!found?.InstanceProfile) {
    throw new InputError(`instance profile '${name}' does not exist; create it (with AmazonSSMManagedInstanceCore and ECR push rights) or omit --instance-profile to have one created`);
  }
}

export async function removeRunPolicy(input: RemoveRunPolicyInput, ctx: EffectContext): Promise<RemovedOutput> {
  const deleted = await unlessCode(() => ctx.clients.iam.send(new DeleteRolePolicyCommand({
    RoleName: input.roleName,
    PolicyName: input.runPolicyName,
  }), sendOptions(ctx)), 'NoSuchEntity');
  return { removed: deleted ? [input.runPolicyName] : [] };
}

// For `cleanup`: what runs left behind (found by the run-id tag, whatever any checkpoint says), and
// removal of the resources kept between runs, but only those this tool created.
import { paginateDescribeSecurityGroups, type Tag } from '@aws-sdk/client-ec2';
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
import { TAG_EXPIRES_AT, TAG_RUN_ID } from '../machine/names.js';
import type { EffectContext } from './context.js';
import { hasAwsCode, unlessCode } from './errors.js';
import { createdByUs, tagValue } from './tags.js';
import { describeInstances } from './instances.js';
import { describeVolumes } from './volumes.js';
import { allItems, sendOptions } from './wait.js';

export interface TaggedResource {
  kind: 'instance' | 'volume' | 'security-group';
  id: string;
  runId: string;
  expiresAt?: string;
  state: string;
  createdAt?: string;
}

const TAGGED = [{ Name: 'tag-key', Values: [TAG_RUN_ID] }];

function tagged(kind: TaggedResource['kind'], id: string | undefined, tags: Tag[] | undefined, state: string, createdAt?: Date): TaggedResource {
  const expiresAt = tagValue(tags, TAG_EXPIRES_AT);
  return {
    kind,
    id: id ?? '',
    runId: tagValue(tags, TAG_RUN_ID) ?? '',
    ...(expiresAt ? { expiresAt } : {}),
    state,
    ...(createdAt ? { createdAt: new Date(createdAt).toISOString() } : {}),
  };
}

/** Every instance (not terminated), volume and security group carrying a run-id tag. */
export async function findTaggedResources(_input: Record<string, never>, ctx: EffectContext): Promise<TaggedResource[]> {
  const [instances, volumes, groups] = await Promise.all([
    describeInstances(ctx, { Filters: [...TAGGED, { Name: 'instance-state-name', Values: ['pending', 'running', 'stopping', 'stopped', 'shutting-down'] }] }),
    describeVolumes(ctx, { Filters: TAGGED }),
    allItems(paginateDescribeSecurityGroups({ client: ctx.clients.ec2 }, { Filters: TAGGED }, sendOptions(ctx)), (page) => page.SecurityGroups),
  ]);
  return [
    ...instances.map((i) => tagged('instance', i.InstanceId, i.Tags, i.State?.Name ?? 'unknown', i.LaunchTime)),
    ...volumes.map((v) => tagged('volume', v.VolumeId, v.Tags, v.State ?? 'unknown', v.CreateTime)),
    ...groups.map((g) => tagged('security-group', g.GroupId, g.Tags, 'exists')),
  ];
}

export interface RemoveReusableInput { roleName?: string; instanceProfileName?: string; repositoryName?: string; bucket?: string }
export interface RemoveReusableOutput { removed: string[]; skipped: { resource: string; reason: string }[] }

const NOT_OURS = `not created by ami2docker (no ami2docker:created-by tag)`;

type Outcome = { removed?: string; skipped?: { resource: string; reason: string } };

async function removeInstanceProfile(name: string, ctx: EffectContext): Promise<Outcome> {
  const { iam } = ctx.clients;
  const resource = `instance profile ${name}`;
  const found = await unlessCode(() => iam.send(new GetInstanceProfileCommand({ InstanceProfileName: name }), sendOptions(ctx)), 'NoSuchEntity');
  if (!found?.InstanceProfile) return {};
  if (!createdByUs(found.InstanceProfile.Tags)) return { skipped: { resource, reason: NOT_OURS } };
  for (const role of found.InstanceProfile.Roles ?? []) {
    await unlessCode(() => iam.send(new RemoveRoleFromInstanceProfileCommand({ InstanceProfileName: name, RoleName: role.RoleName }), sendOptions(ctx)), 'NoSuchEntity');
  }
  await unlessCode(() => iam.send(new DeleteInstanceProfileCommand({ InstanceProfileName: name }), sendOptions(ctx)), 'NoSuchEntity');
  return { removed: resource };
}

/** A role can only be deleted bare: no managed or inline policies, in no instance profile. */
async function removeRole(name: string, ctx: EffectContext): Promise<Outcome> {
  const { iam } = ctx.clients;
  const resource = `role ${name}`;
  const found = await unlessCode(() => iam.send(new GetRoleCommand({ RoleName: name }), sendOptions(ctx)), 'NoSuchEntity');
  if (!found?.Role) return {};
  if (!createdByUs(found.Role.Tags)) return { skipped: { resource, reason: NOT_OURS } };
  const attached = await iam.send(new ListAttachedRolePoliciesCommand({ RoleName: name }), sendOptions(ctx));
  for (const policy of attached.AttachedPolicies ?? []) {
    await unlessCode(() => iam.send(new DetachRolePolicyCommand({ RoleName: name, PolicyArn: policy.PolicyArn }), sendOptions(ctx)), 'NoSuchEntity');
  }
  const inline = await iam.send(new ListRolePoliciesCommand({ RoleName: name }), sendOptions(ctx));
  for (const policyName of inline.PolicyNames ?? []) {
    await unlessCode(() => iam.send(new DeleteRolePolicyCommand({ RoleName: name, PolicyName: policyName }), sendOptions(ctx)), 'NoSuchEntity');
  }
  const profiles = await iam.send(new ListInstanceProfilesForRoleCommand({ RoleName: name }), sendOptions(ctx));
  for (const profile of profiles.InstanceProfiles ?? []) {
    await unlessCode(() => iam.send(new RemoveRoleFromInstanceProfileCommand({ InstanceProfileName: profile.InstanceProfileName, RoleName: name }), sendOptions(ctx)), 'NoSuchEntity');
  }
  await unlessCode(() => iam.send(new DeleteRoleCommand({ RoleName: name }), sendOptions(ctx)), 'NoSuchEntity');
  return { removed: resource };
}

async function removeRepository(name: string, ctx: EffectContext): Promise<Outcome> {
  const { ecr } = ctx.clients;
  const resource = `repository ${name}`;
  const found = await unlessCode(() => ecr.send(new DescribeRepositoriesCommand({ repositoryNames: [name] }), sendOptions(ctx)), 'RepositoryNotFoundException');
  const arn = found?.repositories?.[0]?.repositoryArn;
  if (!arn) return {};
  const tags = await ecr.send(new ListTagsForResourceCommand({ resourceArn: arn }), sendOptions(ctx));
  if (!createdByUs(tags.tags)) return { skipped: { resource, reason: NOT_OURS } };
  // force: the images in it are what the user asked to remove with it.
  await unlessCode(() => ecr.send(new DeleteRepositoryCommand({ repositoryName: name, force: true }), sendOptions(ctx)), 'RepositoryNotFoundException');
  return { removed: resource };
}

/** Keys under a prefix, a page of at most `max` at a time. */
async function listKeys(bucket: string, prefix: string | undefined, max: number | undefined, ctx: EffectContext): Promise<string[]> {
  const page = await ctx.clients.s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, MaxKeys: max }), sendOptions(ctx));
  return (page.Contents ?? []).map((object) => object.Key ?? '').filter(Boolean);
}

/** Only the tool's own output (`ami2docker/`) is emptied; a bucket holding anything else is kept. */
async function removeBucket(name: string, ctx: EffectContext): Promise<Outcome> {
  const { s3 } = ctx.clients;
  const resource = `bucket ${name}`;
  let tags;
  try {
    tags = (await s3.send(new GetBucketTaggingCommand({ Bucket: name }), sendOptions(ctx))).TagSet;
  } catch (error) {
    if (hasAwsCode(error, 'NoSuchBucket')) return {};
    if (!hasAwsCode(error, 'NoSuchTagSet')) throw error;
  }
  if (!createdByUs(tags)) return { skipped: { resource, reason: NOT_OURS } };
  for (let keys = await listKeys(name, 'ami2docker/', 1000, ctx); keys.length; keys = await listKeys(name, 'ami2docker/', 1000, ctx)) {
    await s3.send(new DeleteObjectsCommand({ Bucket: name, Delete: { Objects: keys.map((Key) => ({ Key })), Quiet: true } }), sendOptions(ctx));
  }
  if ((await listKeys(name, undefined, 1, ctx)).length) {
    return { skipped: { resource, reason: 'it holds objects outside ami2docker/' } };
  }
  await unlessCode(() => s3.send(new DeleteBucketCommand({ Bucket: name }), sendOptions(ctx)), 'NoSuchBucket');
  return { removed: resource };
}

/** The profile goes before the role: a role still in a profile cannot be deleted. */
export async function removeReusable(input: RemoveReusableInput, ctx: EffectContext): Promise<RemoveReusableOutput> {
  const steps: (() => Promise<Outcome>)[] = [
    ...(input.instanceProfileName ? [() => removeInstanceProfile(input.instanceProfileName!, ctx)] : []),
    ...(input.roleName ? [() => removeRole(input.roleName!, ctx)] : []),
    ...(input.repositoryName ? [() => removeRepository(input.repositoryName!, ctx)] : []),
    ...(input.bucket ? [() => removeBucket(input.bucket!, ctx)] : []),
  ];
  const output: RemoveReusableOutput = { removed: [], skipped: [] };
  for (const step of steps) {
    const outcome = await step();
    if (outcome.removed) output.removed.push(outcome.removed);
    if (outcome.skipped) output.skipped.push(outcome.skipped);
  }
  return output;
}

// Where the helper runs (subnet, VPC) and the security group it runs in.
import {
  CreateSecurityGroupCommand,
  DeleteSecurityGroupCommand,
  DescribeSecurityGroupsCommand,
  DescribeSubnetsCommand,
  DescribeVpcsCommand,
  type SecurityGroup,
  type Subnet,
} from '@aws-sdk/client-ec2';
import type {
  CreateSecurityGroupInput,
  CreateSecurityGroupOutput,
  RemovedOutput,
  RemoveSecurityGroupInput,
  Resolved,
} from '../machine/types.js';
import { tagList } from '../machine/names.js';
import type { EffectContext } from './context.js';
import { InputError, hasAwsCode, unlessCode } from './errors.js';
import { carriesRunId, runIdFilter } from './tags.js';
import { pollUntil, sendOptions } from './wait.js';

const toSubnet = (subnet: Subnet): Resolved['subnet'] => ({
  id: subnet.SubnetId ?? '',
  vpcId: subnet.VpcId ?? '',
  availabilityZone: subnet.AvailabilityZone ?? '',
});

/** The given subnet, else the default VPC's default subnet in the first availability zone. */
export async function findSubnet(subnetId: string | undefined, ctx: EffectContext): Promise<Resolved['subnet']> {
  const { ec2, region } = ctx.clients;
  if (subnetId) {
    const answer = await unlessCode(() => ec2.send(new DescribeSubnetsCommand({ SubnetIds: [subnetId] }), sendOptions(ctx)), 'InvalidSubnetID.NotFound', 'InvalidSubnetID.Malformed');
    const subnet = answer?.Subnets?.[0];
    if (!subnet) throw new InputError(`subnet ${subnetId} does not exist in region ${region}; check --subnet-id and --region`);
    return toSubnet(subnet);
  }
  const vpcs = await ec2.send(new DescribeVpcsCommand({ Filters: [{ Name: 'isDefault', Values: ['true'] }] }), sendOptions(ctx));
  const vpcId = vpcs.Vpcs?.[0]?.VpcId;
  if (!vpcId) throw new InputError(`no default VPC in region ${region}; pass --subnet-id with a subnet that can reach SSM and ECR`);
  const subnets = await ec2.send(new DescribeSubnetsCommand({
    Filters: [{ Name: 'vpc-id', Values: [vpcId] }, { Name: 'default-for-az', Values: ['true'] }],
  }), sendOptions(ctx));
  // Deterministic: the same account and region always give the same subnet.
  const [first] = (subnets.Subnets ?? []).sort((a, b) =>
    (a.AvailabilityZone ?? '').localeCompare(b.AvailabilityZone ?? '') || (a.SubnetId ?? '').localeCompare(b.SubnetId ?? ''));
  if (!first) throw new InputError(`the default VPC ${vpcId} in region ${region} has no default subnet; pass --subnet-id`);
  return toSubnet(first);
}

async function groupByName(vpcId: string, groupName: string, ctx: EffectContext): Promise<SecurityGroup | undefined> {
  const answer = await ctx.clients.ec2.send(new DescribeSecurityGroupsCommand({
    Filters: [{ Name: 'vpc-id', Values: [vpcId] }, { Name: 'group-name', Values: [groupName] }],
  }), sendOptions(ctx));
  return answer.SecurityGroups?.[0];
}

/**
 * No inbound rules: the helper is reached only through SSM. The default egress rule stays because
 * the SSM agent and the push to ECR need outbound HTTPS.
 */
export async function createSecurityGroup(input: CreateSecurityGroupInput, ctx: EffectContext): Promise<CreateSecurityGroupOutput> {
  const existing = await groupByName(input.vpcId, input.groupName, ctx);
  if (existing?.GroupId) return { groupId: existing.GroupId };
  try {
    const created = await ctx.clients.ec2.send(new CreateSecurityGroupCommand({
      GroupName: input.groupName,
      Description: 'ami2docker helper: no inbound access, outbound for SSM and ECR',
      VpcId: input.vpcId,
      TagSpecifications: [{ ResourceType: 'security-group', Tags: tagList(input.tags) }],
    }), sendOptions(ctx));
    if (!created.GroupId) throw new Error(`CreateSecurityGroup returned no group id for ${input.groupName}`);
    return { groupId: created.GroupId };
  } catch (error) {
    // Another attempt of this run created it between our lookup and our create.
    if (!hasAwsCode(error, 'InvalidGroup.Duplicate')) throw error;
    const raced = await groupByName(input.vpcId, input.groupName, ctx);
    if (!raced?.GroupId) throw error;
    return { groupId: raced.GroupId };
  }
}

async function runGroups(input: RemoveSecurityGroupInput, ctx: EffectContext): Promise<string[]> {
  const { ec2 } = ctx.clients;
  const tagged = await ec2.send(new DescribeSecurityGroupsCommand({ Filters: [runIdFilter(input.runId)] }), sendOptions(ctx));
  const groups = [...(tagged.SecurityGroups ?? [])];
  if (input.groupId && !groups.some((g) => g.GroupId === input.groupId)) {
    const given = await unlessCode(() => ec2.send(new DescribeSecurityGroupsCommand({ GroupIds: [input.groupId!] }), sendOptions(ctx)), 'InvalidGroup.NotFound', 'InvalidGroupId.Malformed');
    groups.push(...(given?.SecurityGroups ?? []));
  }
  // Only groups of this run, whatever id the checkpoint holds.
  return groups.filter((g) => carriesRunId(g.Tags, input.runId)).map((g) => g.GroupId!).filter(Boolean);
}

/** Deleting a group fails with DependencyViolation until the terminated instance's network interface is gone. */
export async function removeSecurityGroup(input: RemoveSecurityGroupInput, ctx: EffectContext): Promise<RemovedOutput> {
  const removed: string[] = [];
  for (const groupId of await runGroups(input, ctx)) {
    await pollUntil(ctx, {
      deadline: input.deadline,
      timeoutMessage: () => `security group ${groupId} is still in use (DependencyViolation) at ${input.deadline}; remove what uses it, then run cleanup again`,
    }, async () => {
      try {
        await ctx.clients.ec2.send(new DeleteSecurityGroupCommand({ GroupId: groupId }), sendOptions(ctx));
        return true;
      } catch (error) {
        if (hasAwsCode(error, 'InvalidGroup.NotFound')) return true;
        if (hasAwsCode(error, 'DependencyViolation')) return undefined;
        throw error;
      }
    });
    removed.push(groupId);
  }
  return { removed };
}

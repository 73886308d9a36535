// The helper instance: launched once per run (ClientToken), reachable only through SSM, and
// self-terminating when the run's maximum runtime has passed.
import {
  paginateDescribeInstances,
  RunInstancesCommand,
  TerminateInstancesCommand,
  type Filter,
  type Instance,
} from '@aws-sdk/client-ec2';
import { DescribeInstanceInformationCommand } from '@aws-sdk/client-ssm';
import { tagList } from '../machine/names.js';
import type {
  RemovedOutput,
  RemoveInstanceInput,
  RunInstanceInput,
  RunInstanceOutput,
  WaitForInstanceInput,
  WaitForInstanceOutput,
} from '../machine/types.js';
import type { EffectContext } from './context.js';
import { hasAwsCode, unlessCode } from './errors.js';
import { carriesRunId, runIdFilter } from './tags.js';
import { allItems, deadlineMs, pause, pollUntil, sendOptions } from './wait.js';

const INSTANCE_NOT_FOUND = 'InvalidInstanceID.NotFound';
const LIVE_STATES = ['pending', 'running', 'stopping', 'stopped', 'shutting-down'];

/**
 * The dead-man switch: the instance powers off (and, with shutdown behaviour `terminate`, is
 * terminated with its volumes) after the run's maximum runtime even if the CLI never returns.
 */
export function deadManUserData(maxRuntimeSeconds: number): string {
  const minutes = Math.max(1, Math.ceil(maxRuntimeSeconds / 60));
  return [
    '#!/bin/bash',
    '# ami2docker helper: terminate this instance when the run exceeds its maximum runtime.',
    `shutdown -h +${minutes} 'ami2docker: maximum runtime reached'`,
    '',
  ].join('\n');
}

export const describeInstances = (ctx: EffectContext, query: { InstanceIds?: string[]; Filters?: Filter[] }): Promise<Instance[]> =>
  allItems(
    paginateDescribeInstances({ client: ctx.clients.ec2 }, query, sendOptions(ctx)),
    (page) => page.Reservations?.flatMap((reservation) => reservation.Instances ?? []),
  );

async function instanceById(instanceId: string, ctx: EffectContext): Promise<Instance | undefined> {
  const instances = await unlessCode(() => describeInstances(ctx, { InstanceIds: [instanceId] }), INSTANCE_NOT_FOUND);
  return instances?.[0];
}

const liveFilter = { Name: 'instance-state-name', Values: LIVE_STATES };

/** Right after an instance profile is created, EC2 does not know it yet for a while. */
export function isProfilePropagationError(error: unknown): boolean {
  return hasAwsCode(error, 'InvalidParameterValue') && /iamInstanceProfile/i.test((error as Error).message ?? '');
}

async function launch(input: RunInstanceInput, ctx: EffectContext): Promise<string> {
  const tags = tagList(input.tags);
  const answer = await ctx.clients.ec2.send(new RunInstancesCommand({
    ClientToken: input.clientToken,
    ImageId: input.imageId,
    InstanceType: input.instanceType as never,
    MinCount: 1,
    MaxCount: 1,
    SubnetId: input.subnetId,
    SecurityGroupIds: [input.securityGroupId],
    IamInstanceProfile: { Name: input.instanceProfileName },
    MetadataOptions: { HttpTokens: 'required', HttpEndpoint: 'enabled' },
    InstanceInitiatedShutdownBehavior: 'terminate',
    UserData: Buffer.from(deadManUserData(input.maxRuntimeSeconds), 'utf8').toString('base64'),
    TagSpecifications: [
      { ResourceType: 'instance', Tags: tags },
      { ResourceType: 'volume', Tags: tags },
    ],
  }), sendOptions(ctx));
  const instanceId = answer.Instances?.[0]?.InstanceId;
  if (!instanceId) throw new Error(`RunInstances returned no instance for token ${input.clientToken}`);
  return instanceId;
}

export async function runInstance(input: RunInstanceInput, ctx: EffectContext): Promise<RunInstanceOutput> {
  const [existing] = await describeInstances(ctx, {
    Filters: [{ Name: 'client-token', Values: [input.clientToken] }, liveFilter],
  });
  if (existing?.InstanceId) return { instanceId: existing.InstanceId };
  const end = deadlineMs(input.propagationDeadline);
  for (let attempt = 1; ; attempt++) {
    try {
      return { instanceId: await launch(input, ctx) };
    } catch (error) {
      if (!isProfilePropagationError(error) || Date.now() >= end) throw error;
      ctx.report({
        type: 'step',
        step: 'instance',
        message: `instance profile ${input.instanceProfileName} is not visible to EC2 yet; retrying (attempt ${attempt})`,
        data: { attempt },
      });
      await pause(ctx, end);
    }
  }
}

const SSM_UNREACHABLE_CAUSES = [
  'the subnet has no route to the SSM endpoints (no NAT gateway, internet gateway with public IP, or VPC endpoints for ssm, ssmmessages and ec2messages)',
  'the helper AMI lacks a running SSM agent',
  'the instance profile lacks AmazonSSMManagedInstanceCore',
  'the instance metadata service (IMDSv2) is blocked, so the agent gets no credentials',
];

async function ssmOnline(instanceId: string, ctx: EffectContext): Promise<boolean> {
  const answer = await ctx.clients.ssm.send(new DescribeInstanceInformationCommand({
    Filters: [{ Key: 'InstanceIds', Values: [instanceId] }],
  }), sendOptions(ctx));
  return answer.InstanceInformationList?.some((info) => info.InstanceId === instanceId && info.PingStatus === 'Online') ?? false;
}

/** Waits until the instance is running; fails at once when it ends up anywhere else. */
export async function waitForInstance(input: WaitForInstanceInput, ctx: EffectContext): Promise<WaitForInstanceOutput> {
  const { instanceId, deadline } = input;
  await pollUntil(ctx, {
    deadline,
    timeoutMessage: () => `instance ${instanceId} was not running at ${deadline}`,
  }, async () => {
    const instance = await instanceById(instanceId, ctx);
    const state = instance?.State?.Name;
    if (state && state !== 'pending' && state !== 'running') {
      throw new Error(`instance ${instanceId} is ${state} instead of starting${instance?.StateReason?.Message ? `: ${instance.StateReason.Message}` : ''}`);
    }
    return state === 'running' ? true : undefined;
  });
  ctx.report({ type: 'step', step: 'instance', message: `instance ${instanceId} is running`, data: { instanceId } });
  return { instanceId };
}

/** Waits until the instance's SSM agent is online; a timeout lists the usual reasons it never is. */
export async function waitForAgent(input: WaitForInstanceInput, ctx: EffectContext): Promise<WaitForInstanceOutput> {
  const { instanceId, deadline } = input;
  ctx.report({ type: 'step', step: 'instance', message: `waiting for the SSM agent of instance ${instanceId}`, data: { instanceId } });
  await pollUntil(ctx, {
    deadline,
    timeoutMessage: () => `the SSM agent of instance ${instanceId} was not online at ${deadline}. Likely causes: ${SSM_UNREACHABLE_CAUSES.join('; ')}`,
  }, async () => ((await ssmOnline(instanceId, ctx)) ? true : undefined));
  return { instanceId };
}

/** Instances of the run: by tag, by the run's client token, and the checkpoint's id if tagged. */
async function runInstances(input: RemoveInstanceInput, ctx: EffectContext): Promise<Instance[]> {
  const [byTag, byToken] = await Promise.all([
    describeInstances(ctx, { Filters: [runIdFilter(input.runId), liveFilter] }),
    describeInstances(ctx, { Filters: [{ Name: 'client-token', Values: [input.clientToken] }, liveFilter] }),
  ]);
  const found = new Map<string, Instance>();
  for (const instance of [...byTag, ...byToken]) found.set(instance.InstanceId!, instance);
  if (input.instanceId && !found.has(input.instanceId)) {
    const given = await instanceById(input.instanceId, ctx);
    if (given && given.State?.Name !== 'terminated') found.set(input.instanceId, given);
  }
  return [...found.values()].filter((instance) => carriesRunId(instance.Tags, input.runId));
}

export async function removeInstance(input: RemoveInstanceInput, ctx: EffectContext): Promise<RemovedOutput> {
  const ids = (await runInstances(input, ctx)).map((instance) => instance.InstanceId!);
  if (ids.length === 0) return { removed: [] };
  for (const instanceId of ids) {
    // One at a time: a batch fails as a whole when any one of its instances is already gone.
    await unlessCode(() => ctx.clients.ec2.send(new TerminateInstancesCommand({ InstanceIds: [instanceId] }), sendOptions(ctx)), INSTANCE_NOT_FOUND);
  }
  for (const instanceId of ids) {
    await pollUntil(ctx, {
      deadline: input.deadline,
      timeoutMessage: () => `instance ${instanceId} was not terminated at ${input.deadline}; run cleanup again later`,
    }, async () => {
      const state = (await instanceById(instanceId, ctx))?.State?.Name;
      return state === undefined || state === 'terminated' ? true : undefined;
    });
  }
  return { removed: ids };
}

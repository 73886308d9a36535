// The `resolve` actor: every fact the run depends on, checked before anything is created, so that
// a problem the user must fix ends the run with nothing to clean up.
import { HELPER_ROLE_NAME, repositoryNameFromAmiName } from '../machine/names.js';
import type { Plan, ResolveInput, ResolveOutput, Resolved } from '../machine/types.js';
import { resolveBucket } from './bucket.js';
import type { EffectContext } from './context.js';
import { requireInstanceProfile } from './iam.js';
import { callerIdentity } from './identity.js';
import { defaultInstanceType, findHelperAmi, findSourceAmi } from './images.js';
import { findSubnet } from './network.js';
import { resolveRepository } from './registry.js';

async function resolveInstanceProfile(plan: Plan, ctx: EffectContext): Promise<Resolved['instanceProfile']> {
  if (!plan.instanceProfile) return { name: HELPER_ROLE_NAME, create: true };
  await requireInstanceProfile(plan.instanceProfile, ctx);
  return { name: plan.instanceProfile, create: false };
}

export async function resolve({ plan }: ResolveInput, ctx: EffectContext): Promise<ResolveOutput> {
  ctx.report({ type: 'step', step: 'resolve', message: 'looking up the AMI, account and network' });
  const identity = await callerIdentity(ctx);
  // The AMI decides the architecture and the repository name; the rest does not depend on it.
  const [ami, subnet, bucket, instanceProfile] = await Promise.all([
    findSourceAmi(plan.ami, identity.accountId, ctx),
    findSubnet(plan.subnetId, ctx),
    plan.ssmBucket ? resolveBucket(plan.ssmBucket, ctx) : Promise.resolve(undefined),
    resolveInstanceProfile(plan, ctx),
  ]);
  const [helperAmiId, repository] = await Promise.all([
    findHelperAmi(plan.helperAmi, ami.architecture, ctx),
    resolveRepository(plan.ecrRepository, repositoryNameFromAmiName(ami.name), ctx),
  ]);
  return {
    accountId: identity.accountId,
    partition: identity.partition,
    ami,
    subnet,
    helperAmiId,
    instanceType: plan.instanceType ?? defaultInstanceType(ami.architecture),
    repository,
    ...(bucket ? { bucket } : {}),
    instanceProfile,
  };
}

// Every effect under the actor name the statechart invokes it by.
import { ensureBucket } from './bucket.js';
import { awaitConversion, sendConversion } from './commands.js';
import { ensureHelperRole, removeRunPolicy } from './iam.js';
import { removeInstance, runInstance, waitForAgent, waitForInstance } from './instances.js';
import { createSecurityGroup, removeSecurityGroup } from './network.js';
import { findTaggedResources, removeReusable } from './orphans.js';
import { ensureRepository, pullImage, verifyImage } from './registry.js';
import { resolve } from './resolve.js';
import { attachVolume, createVolume, removeVolume } from './volumes.js';

export const effects = {
  resolve,
  ensureHelperRole,
  ensureRepository,
  ensureBucket,
  createSecurityGroup,
  createVolume,
  runInstance,
  waitForInstance,
  waitForAgent,
  attachVolume,
  sendConversion,
  awaitConversion,
  verifyImage,
  pullImage,
  removeInstance,
  removeVolume,
  removeSecurityGroup,
  removeRunPolicy,
} as const;

export type EffectName = keyof typeof effects;

/** Used by `cleanup`, outside any run's statechart. */
export const cleanupEffects = { findTaggedResources, removeReusable } as const;
export type { RemoveReusableInput, RemoveReusableOutput, TaggedResource } from './orphans.js';

export { InputError, RemoteError, TimeoutError, VerificationError } from './errors.js';
export { runPolicyDocument } from './iam.js';

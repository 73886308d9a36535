// The conversion statechart. Pure: every side effect is a named actor that the CLI provides
// (`conversionMachine.provide({ actors })`), so the same chart runs against AWS and against fakes,
// and a persisted snapshot can be restored into it.
import { assign, fromPromise, setup, type DoneActorEvent, type ErrorActorEvent } from 'xstate';
import {
  ATTACH_DEVICE,
  HELPER_ROLE_NAME,
  instanceClientToken,
  resourceTags,
  runPolicyName,
  securityGroupName,
  volumeClientToken,
} from './names.js';
import type * as T from './types.js';

export type Phase = 'resolve' | 'provision' | 'attach' | 'convert' | 'verify' | 'teardown' | 'pull';

export interface Intent {
  /** The ClientToken or deterministic name that finds the resource if the call's answer was lost. */
  key: string;
  startedAt: string;
}

/** What the run has created or adopted so far: the checkpoint's inventory. */
export interface Resources {
  roleName?: string;
  instanceProfileName?: string;
  runPolicyName?: string;
  roleCreated?: boolean;
  repository?: { name: string; uri: string; created: boolean };
  bucket?: { name: string; created: boolean };
  securityGroupId?: string;
  volumeId?: string;
  instanceId?: string;
  attached?: boolean;
  commandId?: string;
}

export interface ConversionContext {
  plan: T.Plan;
  resolved?: T.Resolved;
  resources: Resources;
  intents: Partial<Record<'volume' | 'instance' | 'securityGroup' | 'role' | 'command', Intent>>;
  result?: T.ConversionResult & { verified?: T.VerifyImageOutput };
  phases: Partial<Record<Phase, { startedAt: string; endedAt?: string }>>;
  error?: T.StepError;
  /** Teardown steps that failed: what is still in AWS. */
  leftovers: T.StepError[];
  removed: string[];
  /** `cleanup`: a run restarted only to remove what an earlier process of it left behind. */
  mode: 'convert' | 'cleanup';
}

export type ConversionEvent = { type: 'INTERRUPT'; reason?: string };

/** How long teardown waits for one resource to go before recording it as a leftover. */
const TEARDOWN_STEP_SECONDS = 15 * 60;
const PROFILE_PROPAGATION_SECONDS = 120;
const VOLUME_AVAILABLE_SECONDS = 10 * 60;
const ATTACH_SECONDS = 5 * 60;

const placeholder = <TOutput, TInput>(name: string) =>
  fromPromise<TOutput, TInput>(async () => {
    throw new Error(`actor '${name}' was not provided`);
  });

// Placeholders typed with the contract; the CLI and the tests replace them with `provide`.
const actors = {
  resolve: placeholder<T.ResolveOutput, T.ResolveInput>('resolve'),
  ensureHelperRole: placeholder<T.EnsureHelperRoleOutput, T.EnsureHelperRoleInput>('ensureHelperRole'),
  ensureRepository: placeholder<T.EnsureRepositoryOutput, T.EnsureRepositoryInput>('ensureRepository'),
  ensureBucket: placeholder<T.EnsureBucketOutput, T.EnsureBucketInput>('ensureBucket'),
  createSecurityGroup: placeholder<T.CreateSecurityGroupOutput, T.CreateSecurityGroupInput>('createSecurityGroup'),
  createVolume: placeholder<T.CreateVolumeOutput, T.CreateVolumeInput>('createVolume'),
  runInstance: placeholder<T.RunInstanceOutput, T.RunInstanceInput>('runInstance'),
  waitForInstance: placeholder<T.WaitForInstanceOutput, T.WaitForInstanceInput>('waitForInstance'),
  waitForAgent: placeholder<T.WaitForInstanceOutput, T.WaitForInstanceInput>('waitForAgent'),
  attachVolume: placeholder<T.AttachVolumeOutput, T.AttachVolumeInput>('attachVolume'),
  sendConversion: placeholder<T.SendConversionOutput, T.SendConversionInput>('sendConversion'),
  awaitConversion: placeholder<T.ConversionResult, T.AwaitConversionInput>('awaitConversion'),
  verifyImage: placeholder<T.VerifyImageOutput, T.VerifyImageInput>('verifyImage'),
  pullImage: placeholder<T.PullImageOutput, T.PullImageInput>('pullImage'),
  removeInstance: placeholder<T.RemovedOutput, T.RemoveInstanceInput>('removeInstance'),
  removeVolume: placeholder<T.RemovedOutput, T.RemoveVolumeInput>('removeVolume'),
  removeSecurityGroup: placeholder<T.RemovedOutput, T.RemoveSecurityGroupInput>('removeSecurityGroup'),
  removeRunPolicy: placeholder<T.RemovedOutput, T.RemoveRunPolicyInput>('removeRunPolicy'),
};

export type ActorName = keyof typeof actors;
export const ACTOR_NAMES = Object.keys(actors) as ActorName[];

const isoIn = (seconds: number) => new Date(Date.now() + seconds * 1000).toISOString();
const nowIso = () => new Date().toISOString();

/** An actor's error as JSON-safe strings (an Error serialises to `{}`). */
export function toStepError(step: string, error: unknown): T.StepError {
  const e = error as { name?: string; message?: string; Code?: string; code?: string; step?: string } | undefined;
  const name = typeof e?.name === 'string' ? e.name : 'Error';
  const code = e?.Code ?? e?.code ?? (name !== 'Error' ? name : undefined);
  return {
    // The conversion script names its own failing step (find-root, push ...).
    step: e?.name === 'RemoteError' && e.step ? `${step}/${e.step}` : step,
    name,
    message: typeof e?.message === 'string' && e.message ? e.message : String(error),
    ...(typeof code === 'string' ? { code } : {}),
  };
}

// Shared actions receive the actor's done/error event, which the event union does not name.
const errorOf = (event: unknown) => (event as ErrorActorEvent).error;
const removedBy = (event: unknown) => (event as DoneActorEvent<T.RemovedOutput>).output?.removed ?? [];

const resolvedOf = (context: ConversionContext): T.Resolved => {
  if (!context.resolved) throw new Error('the run has not been resolved yet');
  return context.resolved;
};

function tagsFor(context: ConversionContext, what: string): T.ResourceTags {
  return resourceTags(context.plan.runId, context.plan.expiresAt, `ami2docker ${what} ${context.plan.runId}`);
}

function conversionSpec(context: ConversionContext): T.ConversionSpec {
  const { plan, resources } = context;
  const resolved = resolvedOf(context);
  const tags = plan.tagWithAmiId ? [...plan.imageTags, resolved.ami.id] : plan.imageTags;
  return {
    volumeId: resources.volumeId!,
    device: ATTACH_DEVICE,
    repositoryUri: resources.repository!.uri,
    tags: [...new Set(tags)],
    architecture: resolved.ami.architecture,
    region: plan.region,
    ami: { id: resolved.ami.id, name: resolved.ami.name, creationDate: resolved.ami.creationDate },
    changes: plan.changes,
    excludes: plan.excludes,
    compression: plan.compression,
  };
}

export const conversionMachine = setup({
  types: {
    context: {} as ConversionContext,
    events: {} as ConversionEvent,
    /** A new run from its plan, or the cleanup of an ended or abandoned run from its last context. */
    input: {} as { plan: T.Plan } | { cleanupOf: ConversionContext },
  },
  actors,
  actions: {
    startPhase: assign(({ context }, phase: Phase) => ({
      phases: { ...context.phases, [phase]: { startedAt: nowIso() } },
    })),
    endPhase: assign(({ context }, phase: Phase) => ({
      phases: { ...context.phases, [phase]: { startedAt: context.phases[phase]?.startedAt ?? nowIso(), endedAt: nowIso() } },
    })),
    recordIntent: assign(({ context }, params: { kind: keyof ConversionContext['intents']; key: string }) => ({
      intents: { ...context.intents, [params.kind]: { key: params.key, startedAt: nowIso() } },
    })),
    recordFailure: assign(({ context, event }, step: string) =>
      context.error ? {} : { error: toStepError(step, errorOf(event)) },
    ),
    recordInterrupt: assign(({ context, event }) =>
      context.error
        ? {}
        : { error: { step: 'interrupted', name: 'Interrupted', message: (event as { reason?: string }).reason ?? 'interrupted by the user' } },
    ),
    recordLeftover: assign(({ context, event }, step: string) => ({
      leftovers: [...context.leftovers, toStepError(step, errorOf(event))],
    })),
    recordRemoved: assign(({ context, event }) => ({
      removed: [...context.removed, ...(removedBy(event))],
    })),
  },
  guards: {
    profileProvided: ({ context }) => !resolvedOf(context).instanceProfile.create,
    repositoryProvided: ({ context }) => !resolvedOf(context).repository.create,
    noBucket: ({ context }) => !resolvedOf(context).bucket,
    bucketExists: ({ context }) => resolvedOf(context).bucket?.create === false,
    readyToLaunch: ({ context }) => Boolean(context.resources.instanceProfileName && context.resources.securityGroupId),
    failed: ({ context }) => Boolean(context.error),
    keepOnFailure: ({ context }) => Boolean(context.error && context.plan.keepOnFailure),
    hasInstance: ({ context }) => Boolean(context.resources.instanceId || context.intents.instance),
    hasVolume: ({ context }) => Boolean(context.resources.volumeId || context.intents.volume),
    hasSecurityGroup: ({ context }) => Boolean(context.resources.securityGroupId || context.intents.securityGroup),
    hasRunPolicy: ({ context }) => Boolean(context.resources.runPolicyName || context.intents.role),
    hasLeftovers: ({ context }) => context.leftovers.length > 0,
    wantsPull: ({ context }) => context.plan.pull,
    cleaningUp: ({ context }) => context.mode === 'cleanup',
  },
}).createMachine({
  id: 'conversion',
  context: ({ input }) =>
    'cleanupOf' in input
      ? { ...input.cleanupOf, leftovers: [], mode: 'cleanup' as const }
      : { plan: input.plan, resources: {}, intents: {}, phases: {}, leftovers: [], removed: [], mode: 'convert' as const },
  initial: 'starting',
  states: {
    starting: { always: [{ guard: 'cleaningUp', target: 'teardown' }, { target: 'working' }] },
    working: {
      initial: 'resolving',
      on: { INTERRUPT: { target: 'settling', actions: 'recordInterrupt' } },
      states: {
        resolving: {
          entry: { type: 'startPhase', params: 'resolve' },
          exit: { type: 'endPhase', params: 'resolve' },
          invoke: {
            src: 'resolve',
            input: ({ context }) => ({ plan: context.plan }),
            onDone: { target: 'provisioning', actions: assign({ resolved: ({ event }) => event.output }) },
            onError: { target: '#conversion.settling', actions: { type: 'recordFailure', params: 'resolve' } },
          },
        },
        provisioning: {
          type: 'parallel',
          entry: { type: 'startPhase', params: 'provision' },
          exit: { type: 'endPhase', params: 'provision' },
          onDone: 'attaching',
          states: {
            role: {
              initial: 'choosing',
              states: {
                choosing: {
                  always: [
                    {
                      guard: 'profileProvided',
                      target: 'ready',
                      actions: assign({
                        resources: ({ context }) => ({ ...context.resources, instanceProfileName: resolvedOf(context).instanceProfile.name }),
                      }),
                    },
                    { target: 'ensuring', actions: { type: 'recordIntent', params: ({ context }) => ({ kind: 'role', key: runPolicyName(context.plan.runId) }) } },
                  ],
                },
                ensuring: {
                  invoke: {
                    src: 'ensureHelperRole',
                    input: ({ context }) => ({
                      plan: context.plan,
                      resolved: resolvedOf(context),
                      roleName: HELPER_ROLE_NAME,
                      instanceProfileName: HELPER_ROLE_NAME,
                      runPolicyName: runPolicyName(context.plan.runId),
                    }),
                    onDone: {
                      target: 'ready',
                      actions: assign({
                        resources: ({ context, event }) => ({
                          ...context.resources,
                          roleName: event.output.roleName,
                          instanceProfileName: event.output.instanceProfileName,
                          runPolicyName: event.output.runPolicyName,
                          roleCreated: event.output.roleCreated,
                        }),
                      }),
                    },
                    onError: { target: '#conversion.settling', actions: { type: 'recordFailure', params: 'provision/role' } },
                  },
                },
                ready: { type: 'final' },
              },
            },
            repository: {
              initial: 'choosing',
              states: {
                choosing: {
                  always: [
                    {
                      guard: 'repositoryProvided',
                      target: 'ready',
                      actions: assign({
                        resources: ({ context }) => {
                          const { name, uri } = resolvedOf(context).repository;
                          return { ...context.resources, repository: { name, uri: uri ?? name, created: false } };
                        },
                      }),
                    },
                    { target: 'ensuring' },
                  ],
                },
                ensuring: {
                  invoke: {
                    src: 'ensureRepository',
                    input: ({ context }) => ({ name: resolvedOf(context).repository.name, tags: tagsFor(context, 'repository') }),
                    onDone: {
                      target: 'ready',
                      actions: assign({ resources: ({ context, event }) => ({ ...context.resources, repository: event.output }) }),
                    },
                    onError: { target: '#conversion.settling', actions: { type: 'recordFailure', params: 'provision/repository' } },
                  },
                },
                ready: { type: 'final' },
              },
            },
            bucket: {
              initial: 'choosing',
              states: {
                choosing: {
                  always: [
                    { guard: 'noBucket', target: 'ready' },
                    {
                      guard: 'bucketExists',
                      target: 'ready',
                      actions: assign({
                        resources: ({ context }) => ({ ...context.resources, bucket: { name: resolvedOf(context).bucket!.name, created: false } }),
                      }),
                    },
                    { target: 'ensuring' },
                  ],
                },
                ensuring: {
                  invoke: {
                    src: 'ensureBucket',
                    input: ({ context }) => ({ name: resolvedOf(context).bucket!.name, region: context.plan.region, tags: tagsFor(context, 'output') }),
                    onDone: {
                      target: 'ready',
                      actions: assign({ resources: ({ context, event }) => ({ ...context.resources, bucket: event.output }) }),
                    },
                    onError: { target: '#conversion.settling', actions: { type: 'recordFailure', params: 'provision/bucket' } },
                  },
                },
                ready: { type: 'final' },
              },
            },
            securityGroup: {
              initial: 'creating',
              states: {
                creating: {
                  entry: { type: 'recordIntent', params: ({ context }) => ({ kind: 'securityGroup', key: securityGroupName(context.plan.runId) }) },
                  invoke: {
                    src: 'createSecurityGroup',
                    input: ({ context }) => ({
                      vpcId: resolvedOf(context).subnet.vpcId,
                      groupName: securityGroupName(context.plan.runId),
                      tags: tagsFor(context, 'helper security group'),
                    }),
                    onDone: {
                      target: 'ready',
                      actions: assign({ resources: ({ context, event }) => ({ ...context.resources, securityGroupId: event.output.groupId }) }),
                    },
                    onError: { target: '#conversion.settling', actions: { type: 'recordFailure', params: 'provision/security-group' } },
                  },
                },
                ready: { type: 'final' },
              },
            },
            volume: {
              initial: 'creating',
              states: {
                creating: {
                  entry: { type: 'recordIntent', params: ({ context }) => ({ kind: 'volume', key: volumeClientToken(context.plan.runId) }) },
                  invoke: {
                    src: 'createVolume',
                    input: ({ context }) => {
                      const { ami, subnet } = resolvedOf(context);
                      return {
                        clientToken: volumeClientToken(context.plan.runId),
                        snapshotId: ami.snapshotId,
                        availabilityZone: subnet.availabilityZone,
                        sizeGiB: ami.volumeSizeGiB,
                        encrypted: ami.encrypted,
                        tags: tagsFor(context, 'volume'),
                        deadline: isoIn(VOLUME_AVAILABLE_SECONDS),
                      };
                    },
                    onDone: {
                      target: 'ready',
                      actions: assign({ resources: ({ context, event }) => ({ ...context.resources, volumeId: event.output.volumeId }) }),
                    },
                    onError: { target: '#conversion.settling', actions: { type: 'recordFailure', params: 'provision/volume' } },
                  },
                },
                ready: { type: 'final' },
              },
            },
            instance: {
              initial: 'waitingForProfile',
              states: {
                // The instance needs the profile and the security group; both come from sibling regions.
                waitingForProfile: { always: { guard: 'readyToLaunch', target: 'launching' } },
                launching: {
                  entry: { type: 'recordIntent', params: ({ context }) => ({ kind: 'instance', key: instanceClientToken(context.plan.runId) }) },
                  invoke: {
                    src: 'runInstance',
                    input: ({ context }) => {
                      const resolved = resolvedOf(context);
                      return {
                        clientToken: instanceClientToken(context.plan.runId),
                        imageId: resolved.helperAmiId,
                        instanceType: resolved.instanceType,
                        subnetId: resolved.subnet.id,
                        securityGroupId: context.resources.securityGroupId!,
                        instanceProfileName: context.resources.instanceProfileName!,
                        maxRuntimeSeconds: context.plan.maxRuntimeSeconds,
                        tags: tagsFor(context, 'helper'),
                        propagationDeadline: isoIn(PROFILE_PROPAGATION_SECONDS),
                      };
                    },
                    onDone: {
                      target: 'booting',
                      actions: assign({ resources: ({ context, event }) => ({ ...context.resources, instanceId: event.output.instanceId }) }),
                    },
                    onError: { target: '#conversion.settling', actions: { type: 'recordFailure', params: 'provision/instance' } },
                  },
                },
                booting: {
                  invoke: {
                    src: 'waitForInstance',
                    input: ({ context }) => ({ instanceId: context.resources.instanceId!, deadline: isoIn(context.plan.ssmOnlineTimeoutSeconds) }),
                    onDone: 'ready',
                    onError: { target: '#conversion.settling', actions: { type: 'recordFailure', params: 'provision/instance-running' } },
                  },
                },
                ready: { type: 'final' },
              },
            },
          },
        },
        // The volume attaches while the helper's SSM agent registers: attaching needs only a
        // running instance, and the command needs both.
        attaching: {
          type: 'parallel',
          entry: { type: 'startPhase', params: 'attach' },
          exit: { type: 'endPhase', params: 'attach' },
          onDone: 'converting',
          states: {
            volume: {
              initial: 'attaching',
              states: {
                attaching: {
                  invoke: {
                    src: 'attachVolume',
                    input: ({ context }) => ({
                      instanceId: context.resources.instanceId!,
                      volumeId: context.resources.volumeId!,
                      device: ATTACH_DEVICE,
                      deadline: isoIn(ATTACH_SECONDS),
                    }),
                    onDone: { target: 'attached', actions: assign({ resources: ({ context }) => ({ ...context.resources, attached: true }) }) },
                    onError: { target: '#conversion.settling', actions: { type: 'recordFailure', params: 'attach' } },
                  },
                },
                attached: { type: 'final' },
              },
            },
            agent: {
              initial: 'registering',
              states: {
                registering: {
                  invoke: {
                    src: 'waitForAgent',
                    input: ({ context }) => ({ instanceId: context.resources.instanceId!, deadline: isoIn(context.plan.ssmOnlineTimeoutSeconds) }),
                    onDone: 'online',
                    onError: { target: '#conversion.settling', actions: { type: 'recordFailure', params: 'provision/ssm-online' } },
                  },
                },
                online: { type: 'final' },
              },
            },
          },
        },
        converting: {
          initial: 'sending',
          entry: { type: 'startPhase', params: 'convert' },
          exit: { type: 'endPhase', params: 'convert' },
          states: {
            sending: {
              entry: { type: 'recordIntent', params: ({ context }) => ({ kind: 'command', key: context.plan.runId }) },
              invoke: {
                src: 'sendConversion',
                input: ({ context }) => ({
                  instanceId: context.resources.instanceId!,
                  runId: context.plan.runId,
                  spec: conversionSpec(context),
                  ...(context.resources.bucket ? { bucket: context.resources.bucket.name } : {}),
                  executionTimeoutSeconds: Math.max(60, context.plan.maxRuntimeSeconds - 120),
                }),
                onDone: {
                  target: 'awaiting',
                  actions: assign({ resources: ({ context, event }) => ({ ...context.resources, commandId: event.output.commandId }) }),
                },
                onError: { target: '#conversion.settling', actions: { type: 'recordFailure', params: 'convert' } },
              },
            },
            awaiting: {
              invoke: {
                src: 'awaitConversion',
                input: ({ context }) => ({
                  commandId: context.resources.commandId!,
                  instanceId: context.resources.instanceId!,
                  runId: context.plan.runId,
                  ...(context.resources.bucket ? { bucket: context.resources.bucket.name } : {}),
                  deadline: context.plan.expiresAt,
                }),
                onDone: { target: '#conversion.working.verifying', actions: assign({ result: ({ event }) => event.output }) },
                onError: { target: '#conversion.settling', actions: { type: 'recordFailure', params: 'convert' } },
              },
            },
          },
        },
        verifying: {
          entry: { type: 'startPhase', params: 'verify' },
          exit: { type: 'endPhase', params: 'verify' },
          invoke: {
            src: 'verifyImage',
            input: ({ context }) => ({
              repositoryName: context.resources.repository!.name,
              digest: context.result!.digest,
              tags: context.result!.tags,
            }),
            onDone: {
              target: '#conversion.settling',
              actions: assign({ result: ({ context, event }) => ({ ...context.result!, verified: event.output }) }),
            },
            onError: { target: '#conversion.settling', actions: { type: 'recordFailure', params: 'verify' } },
          },
        },
      },
    },
    // Every path leaves through here: keep resources for debugging when asked, else tear down.
    settling: {
      always: [{ guard: 'keepOnFailure', target: 'kept' }, { target: 'teardown' }],
    },
    teardown: {
      initial: 'instance',
      entry: { type: 'startPhase', params: 'teardown' },
      exit: { type: 'endPhase', params: 'teardown' },
      states: {
        instance: { always: [{ guard: 'hasInstance', target: 'removingInstance' }, { target: 'volume' }] },
        removingInstance: {
          invoke: {
            src: 'removeInstance',
            input: ({ context }) => ({
              runId: context.plan.runId,
              ...(context.resources.instanceId ? { instanceId: context.resources.instanceId } : {}),
              clientToken: instanceClientToken(context.plan.runId),
              deadline: isoIn(TEARDOWN_STEP_SECONDS),
            }),
            onDone: { target: 'volume', actions: 'recordRemoved' },
            onError: { target: 'volume', actions: { type: 'recordLeftover', params: 'teardown/instance' } },
          },
        },
        volume: { always: [{ guard: 'hasVolume', target: 'removingVolume' }, { target: 'securityGroup' }] },
        removingVolume: {
          invoke: {
            src: 'removeVolume',
            input: ({ context }) => ({
              runId: context.plan.runId,
              ...(context.resources.volumeId ? { volumeId: context.resources.volumeId } : {}),
              deadline: isoIn(TEARDOWN_STEP_SECONDS),
            }),
            onDone: { target: 'securityGroup', actions: 'recordRemoved' },
            onError: { target: 'securityGroup', actions: { type: 'recordLeftover', params: 'teardown/volume' } },
          },
        },
        securityGroup: { always: [{ guard: 'hasSecurityGroup', target: 'removingSecurityGroup' }, { target: 'runPolicy' }] },
        removingSecurityGroup: {
          invoke: {
            src: 'removeSecurityGroup',
            input: ({ context }) => ({
              runId: context.plan.runId,
              ...(context.resources.securityGroupId ? { groupId: context.resources.securityGroupId } : {}),
              ...(context.resolved ? { vpcId: context.resolved.subnet.vpcId } : {}),
              groupName: securityGroupName(context.plan.runId),
              deadline: isoIn(TEARDOWN_STEP_SECONDS),
            }),
            onDone: { target: 'runPolicy', actions: 'recordRemoved' },
            onError: { target: 'runPolicy', actions: { type: 'recordLeftover', params: 'teardown/security-group' } },
          },
        },
        runPolicy: { always: [{ guard: 'hasRunPolicy', target: 'removingRunPolicy' }, { target: 'finished' }] },
        removingRunPolicy: {
          invoke: {
            src: 'removeRunPolicy',
            input: ({ context }) => ({ roleName: context.resources.roleName ?? HELPER_ROLE_NAME, runPolicyName: runPolicyName(context.plan.runId) }),
            onDone: { target: 'finished', actions: 'recordRemoved' },
            onError: { target: 'finished', actions: { type: 'recordLeftover', params: 'teardown/run-policy' } },
          },
        },
        finished: { type: 'final' },
      },
      onDone: [
        { guard: 'hasLeftovers', target: 'cleanupIncomplete' },
        { guard: 'cleaningUp', target: 'cleaned' },
        { guard: 'failed', target: 'failed' },
        { guard: 'wantsPull', target: 'pulling' },
        { target: 'done' },
      ],
    },
    pulling: {
      entry: { type: 'startPhase', params: 'pull' },
      exit: { type: 'endPhase', params: 'pull' },
      invoke: {
        src: 'pullImage',
        input: ({ context }) => ({ imageUri: context.result!.imageUri, tags: context.result!.tags, region: context.plan.region }),
        onDone: 'done',
        onError: { target: 'failed', actions: { type: 'recordFailure', params: 'pull' } },
      },
    },
    done: { type: 'final' },
    failed: { type: 'final' },
    kept: { type: 'final' },
    cleaned: { type: 'final' },
    cleanupIncomplete: { type: 'final' },
  },
});

export type ConversionMachine = typeof conversionMachine;
export type FinalState = 'done' | 'failed' | 'kept' | 'cleaned' | 'cleanupIncomplete';

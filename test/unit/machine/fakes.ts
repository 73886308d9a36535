// Fake actors for the conversion statechart: each records its calls and answers like AWS would.
import { fromPromise } from 'xstate';
import type { ActorName } from '../../../src/machine/conversion.js';
import { normalisePlan } from '../../../src/machine/plan.js';
import type { Plan, Resolved } from '../../../src/machine/types.js';

export const resolved: Resolved = {
  accountId: '123456789012',
  partition: 'aws',
  ami: {
    id: 'ami-0123456789abcdef0',
    name: 'web-server-2024',
    ownerId: '123456789012',
    architecture: 'x86_64',
    creationDate: '2024-05-01T10:00:00.000Z',
    rootDeviceName: '/dev/xvda',
    snapshotId: 'snap-0123456789abcdef0',
    volumeSizeGiB: 8,
    encrypted: false,
  },
  subnet: { id: 'subnet-0123456789abcdef0', vpcId: 'vpc-0123456789abcdef0', availabilityZone: 'us-east-1b' },
  helperAmiId: 'ami-0fedcba9876543210',
  instanceType: 'c7i.large',
  repository: { name: 'web-server-2024', create: true },
  bucket: { name: 'my-output', create: true },
  instanceProfile: { name: 'ami2docker-helper', create: true },
};

export function plan(overrides: Partial<Parameters<typeof normalisePlan>[0]> = {}): Plan {
  return normalisePlan({ amiName: 'web-server-2024', region: 'us-east-1', ssmBucket: 'my-output', ...overrides }, new Date(), 'test-run');
}

type Answer = (input: any) => Promise<unknown>;
export interface Call { name: ActorName; input: any; at: number }

const defaults: Record<ActorName, Answer> = {
  resolve: async () => resolved,
  ensureHelperRole: async (input) => ({ roleName: input.roleName, instanceProfileName: input.instanceProfileName, runPolicyName: input.runPolicyName, roleCreated: true }),
  ensureRepository: async (input) => ({ name: input.name, uri: `123456789012.dkr.ecr.us-east-1.amazonaws.com/${input.name}`, created: true }),
  ensureBucket: async (input) => ({ name: input.name, created: true }),
  createSecurityGroup: async () => ({ groupId: 'sg-0123456789abcdef0' }),
  createVolume: async () => ({ volumeId: 'vol-0123456789abcdef0' }),
  runInstance: async () => ({ instanceId: 'i-0123456789abcdef0' }),
  waitForInstance: async (input) => ({ instanceId: input.instanceId }),
  waitForAgent: async (input) => ({ instanceId: input.instanceId }),
  attachVolume: async (input) => ({ device: input.device }),
  sendConversion: async () => ({ commandId: 'cmd-1' }),
  awaitConversion: async () => ({ imageUri: '123456789012.dkr.ecr.us-east-1.amazonaws.com/web-server-2024@sha256:abc', digest: 'sha256:abc', tags: ['latest', 'ami-0123456789abcdef0'] }),
  verifyImage: async (input) => ({ digest: input.digest }),
  pullImage: async (input) => ({ pulled: input.imageUri }),
  removeInstance: async () => ({ removed: ['instance i-0123456789abcdef0'] }),
  removeVolume: async () => ({ removed: ['volume vol-0123456789abcdef0'] }),
  removeSecurityGroup: async () => ({ removed: ['security group sg-0123456789abcdef0'] }),
  removeRunPolicy: async () => ({ removed: ['policy'] }),
};

/** Actors that answer with the defaults unless overridden, and a log of every call in order. */
export function fakeActors(overrides: Partial<Record<ActorName, Answer>> = {}) {
  const calls: Call[] = [];
  const actors = Object.fromEntries(
    (Object.keys(defaults) as ActorName[]).map((name) => [
      name,
      fromPromise(async ({ input }: { input: unknown }) => {
        calls.push({ name, input, at: Date.now() });
        return (overrides[name] ?? defaults[name])(input);
      }),
    ]),
  );
  return { actors: actors as any, calls, names: () => calls.map((call) => call.name) };
}

export const awsError = (name: string, message: string) => Object.assign(new Error(message), { name });

/** A promise whose settling the test controls. */
export function deferred<T = unknown>() {
  let resolve!: (value: T) => void;
  let reject!: (reason: unknown) => void;
  const promise = new Promise<T>((res, rej) => { resolve = res; reject = rej; });
  return { promise, resolve, reject };
}

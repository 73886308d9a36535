// Shared fixtures for the effect tests: clients whose `send` aws-sdk-client-mock replaces, a context
// that records reports, and SDK-shaped errors.
import { EC2Client } from '@aws-sdk/client-ec2';
import { ECRClient } from '@aws-sdk/client-ecr';
import { IAMClient } from '@aws-sdk/client-iam';
import { S3Client } from '@aws-sdk/client-s3';
import { SSMClient } from '@aws-sdk/client-ssm';
import { STSClient } from '@aws-sdk/client-sts';
import { mockClient } from 'aws-sdk-client-mock';
import type { AwsClients } from '../../../src/effects/clients.js';
import type { EffectContext, ProgressEvent } from '../../../src/effects/context.js';
import type { Plan, ResourceTags } from '../../../src/machine/types.js';

export const REGION = 'eu-west-1';
export const ACCOUNT = '123456789012';

export function mocks() {
  return {
    ec2: mockClient(EC2Client),
    ssm: mockClient(SSMClient),
    s3: mockClient(S3Client),
    iam: mockClient(IAMClient),
    ecr: mockClient(ECRClient),
    sts: mockClient(STSClient),
  };
}
export type Mocks = ReturnType<typeof mocks>;

export function resetAll(m: Mocks): void {
  for (const mock of Object.values(m)) mock.reset();
}

export function restoreAll(m: Mocks): void {
  for (const mock of Object.values(m)) mock.restore();
}

export interface TestContext extends EffectContext { reports: ProgressEvent[] }

export function testContext(region = REGION, signal?: AbortSignal): TestContext {
  const config = { region, credentials: { accessKeyId: 'AKIDTEST', secretAccessKey: 'secret' } };
  const clients: AwsClients = {
    region,
    ec2: new EC2Client(config),
    ssm: new SSMClient(config),
    s3: new S3Client(config),
    iam: new IAMClient(config),
    ecr: new ECRClient(config),
    sts: new STSClient(config),
    destroy() {},
  };
  const reports: ProgressEvent[] = [];
  return { clients, reports, report: (event) => reports.push(event), pollSeconds: 0.001, signal };
}

/** An error shaped like the SDK's: `name` is the AWS error code. */
export function awsError(name: string, message = name, httpStatusCode = 400): Error {
  return Object.assign(new Error(message), { name, $fault: 'client', $metadata: { httpStatusCode } });
}

export const inSeconds = (seconds: number) => new Date(Date.now() + seconds * 1000).toISOString();
export const past = () => new Date(Date.now() - 1000).toISOString();

export const TAGS: ResourceTags = { runId: '20260101-120000-abcd', expiresAt: '2026-01-01T14:00:00.000Z', name: 'ami2docker-20260101-120000-abcd' };

export function plan(overrides: Partial<Plan> = {}): Plan {
  return {
    runId: TAGS.runId,
    region: REGION,
    ami: { id: 'ami-0source', owners: [] },
    helperAmi: {},
    imageTags: ['latest'],
    tagWithAmiId: false,
    changes: [],
    excludes: [],
    compression: 'gzip',
    maxRuntimeSeconds: 7200,
    ssmOnlineTimeoutSeconds: 600,
    keepOnFailure: false,
    pull: false,
    createdAt: '2026-01-01T12:00:00.000Z',
    expiresAt: TAGS.expiresAt,
    ...overrides,
  };
}

/** Every tag list must carry the run's identity tags. */
export function tagKeys(tags: { Key?: string }[] | undefined): string[] {
  return (tags ?? []).map((tag) => tag.Key ?? '').sort();
}

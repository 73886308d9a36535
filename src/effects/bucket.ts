// The optional S3 bucket that receives the full SSM command output (GetCommandInvocation truncates).
import {
  CreateBucketCommand,
  GetBucketTaggingCommand,
  GetObjectCommand,
  HeadBucketCommand,
  ListObjectsV2Command,
  type BucketLocationConstraint,
} from '@aws-sdk/client-s3';
import { outputPrefix } from '../machine/names.js';
import type { EnsureBucketInput, EnsureBucketOutput, Resolved } from '../machine/types.js';
import type { EffectContext } from './context.js';
import { InputError, hasAwsCode, httpStatus } from './errors.js';
import { carriesRunId, reusableTagList } from './tags.js';
import { sendOptions } from './wait.js';

/** For resolve: an existing bucket is used as is, a missing one is created, a foreign one refused. */
export async function resolveBucket(name: string, ctx: EffectContext): Promise<NonNullable<Resolved['bucket']>> {
  try {
    await ctx.clients.s3.send(new HeadBucketCommand({ Bucket: name }), sendOptions(ctx));
    return { name, create: false };
  } catch (error) {
    const status = httpStatus(error);
    if (status === 404 || hasAwsCode(error, 'NotFound', 'NoSuchBucket')) return { name, create: true };
    if (status === 301) {
      throw new InputError(`S3 bucket '${name}' is in another region than ${ctx.clients.region}; choose a bucket in ${ctx.clients.region} for --ssm-bucket`);
    }
    if (status === 403) {
      throw new InputError(`S3 bucket '${name}' exists but belongs to another account (or this one may not use it); choose another --ssm-bucket`);
    }
    throw error;
  }
}

/** Tags of a bucket, or none when it has no tag set. */
async function bucketTags(name: string, ctx: EffectContext) {
  try {
    return (await ctx.clients.s3.send(new GetBucketTaggingCommand({ Bucket: name }), sendOptions(ctx))).TagSet ?? [];
  } catch (error) {
    if (hasAwsCode(error, 'NoSuchTagSet')) return [];
    throw error;
  }
}

/**
 * Created with its tags (CreateBucketConfiguration.Tags), so it is never untagged. New buckets
 * block public access by default. A bucket this account already owns is kept as it is.
 */
export async function ensureBucket(input: EnsureBucketInput, ctx: EffectContext): Promise<EnsureBucketOutput> {
  const { s3 } = ctx.clients;
  try {
    await s3.send(new CreateBucketCommand({
      Bucket: input.name,
      CreateBucketConfiguration: {
        Tags: reusableTagList(input.tags),
        // us-east-1 is the one region that rejects its own name as a location constraint.
        ...(input.region === 'us-east-1' ? {} : { LocationConstraint: input.region as BucketLocationConstraint }),
      },
    }), sendOptions(ctx));
  } catch (error) {
    if (hasAwsCode(error, 'BucketAlreadyExists')) {
      throw new InputError(`S3 bucket name '${input.name}' is taken by another account; choose another --ssm-bucket`);
    }
    if (!hasAwsCode(error, 'BucketAlreadyOwnedByYou')) throw error;
    // Made by an earlier attempt of this run only if it carries this run's id.
    return { name: input.name, created: carriesRunId(await bucketTags(input.name, ctx), input.tags.runId) };
  }
  return { name: input.name, created: true };
}

export interface CommandOutputRef { bucket: string; runId: string; commandId: string; instanceId: string }
export interface CommandOutput { stdout?: string; stderr?: string }

/**
 * SSM writes `<prefix>/<commandId>/<instanceId>/<plugin>/<step>/stdout|stderr`. The key is found by
 * listing rather than rebuilt, because the agent's joining of prefix and ids is not documented.
 */
export async function readCommandOutput(ref: CommandOutputRef, ctx: EffectContext): Promise<CommandOutput> {
  const { s3 } = ctx.clients;
  const keys: string[] = [];
  let ContinuationToken: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: ref.bucket, Prefix: outputPrefix(ref.runId), ContinuationToken }), sendOptions(ctx));
    keys.push(...(page.Contents ?? []).map((object) => object.Key ?? ''));
    ContinuationToken = page.NextContinuationToken;
  } while (ContinuationToken);
  const ofCommand = keys.filter((key) => key.includes(`/${ref.commandId}/${ref.instanceId}/`));
  const read = async (stream: 'stdout' | 'stderr') => {
    const key = ofCommand.find((candidate) => candidate.endsWith(`/${stream}`));
    if (!key) return undefined;
    const object = await s3.send(new GetObjectCommand({ Bucket: ref.bucket, Key: key }), sendOptions(ctx));
    return object.Body ? await object.Body.transformToString('utf8') : '';
  };
  const [stdout, stderr] = await Promise.all([read('stdout'), read('stderr')]);
  return { stdout, stderr };
}

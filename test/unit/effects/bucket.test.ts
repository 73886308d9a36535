import { afterAll, beforeEach, describe, expect, it } from '@jest/globals';
import { CreateBucketCommand, GetBucketTaggingCommand, PutBucketTaggingCommand } from '@aws-sdk/client-s3';
import { ensureBucket } from '../../../src/effects/bucket.js';
import { InputError } from '../../../src/effects/errors.js';
import { TAGS, awsError, mocks, resetAll, restoreAll, tagKeys, testContext } from './helpers.js';

const m = mocks();
afterAll(() => restoreAll(m));
beforeEach(() => resetAll(m));

describe('ensureBucket', () => {
  it('creates the bucket in its region with its tags in the same request', async () => {
    m.s3.on(CreateBucketCommand).resolves({});
    expect(await ensureBucket({ name: 'out', region: 'eu-west-1', tags: TAGS }, testContext())).toEqual({ name: 'out', created: true });
    const request = m.s3.commandCalls(CreateBucketCommand)[0].args[0].input;
    expect(request.CreateBucketConfiguration?.LocationConstraint).toBe('eu-west-1');
    expect(tagKeys(request.CreateBucketConfiguration?.Tags)).toEqual(['Name', 'ami2docker:created-by', 'ami2docker:run-id']);
    expect(m.s3.commandCalls(PutBucketTaggingCommand)).toHaveLength(0);
  });

  it('gives us-east-1 no location constraint, but still the tags', async () => {
    m.s3.on(CreateBucketCommand).resolves({});
    await ensureBucket({ name: 'out', region: 'us-east-1', tags: TAGS }, testContext('us-east-1'));
    const configuration = m.s3.commandCalls(CreateBucketCommand)[0].args[0].input.CreateBucketConfiguration;
    expect(configuration?.LocationConstraint).toBeUndefined();
    expect(tagKeys(configuration?.Tags)).toEqual(['Name', 'ami2docker:created-by', 'ami2docker:run-id']);
  });

  it('keeps an own bucket as it is, created only if this run tagged it', async () => {
    m.s3.on(CreateBucketCommand).rejects(awsError('BucketAlreadyOwnedByYou', 'owned', 409));
    m.s3.on(GetBucketTaggingCommand).rejects(awsError('NoSuchTagSet', 'none', 404));
    expect(await ensureBucket({ name: 'out', region: 'eu-west-1', tags: TAGS }, testContext())).toEqual({ name: 'out', created: false });
    m.s3.on(GetBucketTaggingCommand).resolves({ TagSet: [{ Key: 'ami2docker:run-id', Value: TAGS.runId }] });
    expect(await ensureBucket({ name: 'out', region: 'eu-west-1', tags: TAGS }, testContext())).toEqual({ name: 'out', created: true });
    expect(m.s3.commandCalls(PutBucketTaggingCommand)).toHaveLength(0);
  });

  it('refuses a name another account holds', async () => {
    m.s3.on(CreateBucketCommand).rejects(awsError('BucketAlreadyExists', 'taken', 409));
    await expect(ensureBucket({ name: 'out', region: 'eu-west-1', tags: TAGS }, testContext())).rejects.toBeInstanceOf(InputError);
  });
});

import { afterAll, beforeEach, describe, expect, it } from '@jest/globals';
import { CreateRepositoryCommand, DescribeImagesCommand, DescribeRepositoriesCommand, ListTagsForResourceCommand } from '@aws-sdk/client-ecr';
import { ensureRepository, repositoryNameFromReference, verifyImage } from '../../../src/effects/registry.js';
import { VerificationError } from '../../../src/effects/errors.js';
import { TAGS, awsError, mocks, resetAll, restoreAll, tagKeys, testContext } from './helpers.js';

const m = mocks();
afterAll(() => restoreAll(m));
beforeEach(() => resetAll(m));

const URI = 'registry.example:5000/team/web';

describe('repositoryNameFromReference', () => {
  it.each([
    ['team/web', 'team/web'],
    ['web', 'web'],
    ['123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/web', 'team/web'],
    ['localhost:5000/web:latest', 'web'],
    ['localhost/web@sha256:abc', 'web'],
    ['registry.example/web:1.0', 'web'],
  ])('%s → %s', (reference, name) => expect(repositoryNameFromReference(reference)).toBe(name));
});

describe('ensureRepository', () => {
  it('creates the named repository with tags and takes the URI from ECR', async () => {
    m.ecr.on(CreateRepositoryCommand).resolves({ repository: { repositoryName: 'team/web', repositoryUri: URI } });
    expect(await ensureRepository({ name: 'team/web', tags: TAGS }, testContext())).toEqual({ name: 'team/web', uri: URI, created: true });
    const request = m.ecr.commandCalls(CreateRepositoryCommand)[0].args[0].input;
    expect(request.repositoryName).toBe('team/web');
    expect(tagKeys(request.tags)).toEqual(['Name', 'ami2docker:created-by', 'ami2docker:run-id']);
  });

  it('reuses an existing repository; created only when this run made it', async () => {
    m.ecr.on(CreateRepositoryCommand).rejects(awsError('RepositoryAlreadyExistsException'));
    m.ecr.on(DescribeRepositoriesCommand, { repositoryNames: ['team/web'] }).resolves({ repositories: [{ repositoryName: 'team/web', repositoryUri: URI, repositoryArn: 'arn:repo' }] });
    m.ecr.on(ListTagsForResourceCommand).resolves({ tags: [{ Key: 'ami2docker:run-id', Value: 'other-run' }] });
    expect(await ensureRepository({ name: 'team/web', tags: TAGS }, testContext())).toEqual({ name: 'team/web', uri: URI, created: false });
    m.ecr.on(ListTagsForResourceCommand).resolves({ tags: [{ Key: 'ami2docker:run-id', Value: TAGS.runId }] });
    expect(await ensureRepository({ name: 'team/web', tags: TAGS }, testContext())).toEqual({ name: 'team/web', uri: URI, created: true });
  });
});

describe('verifyImage', () => {
  const input = { repositoryName: 'team/web', digest: 'sha256:abc', tags: ['latest', 'ami-1'] };

  it('accepts the digest carrying every tag', async () => {
    m.ecr.on(DescribeImagesCommand).resolves({ imageDetails: [{ imageDigest: 'sha256:abc', imageTags: ['ami-1', 'latest'], imageSizeInBytes: 42, imagePushedAt: new Date('2026-01-01T12:30:00Z') }] });
    expect(await verifyImage(input, testContext())).toEqual({ digest: 'sha256:abc', sizeBytes: 42, pushedAt: '2026-01-01T12:30:00.000Z' });
    expect(m.ecr.commandCalls(DescribeImagesCommand)[0].args[0].input).toEqual({ repositoryName: 'team/web', imageIds: [{ imageDigest: 'sha256:abc' }] });
  });

  it('rejects a missing digest and a missing tag', async () => {
    m.ecr.on(DescribeImagesCommand).rejects(awsError('ImageNotFoundException'));
    await expect(verifyImage(input, testContext())).rejects.toBeInstanceOf(VerificationError);
    m.ecr.on(DescribeImagesCommand).resolves({ imageDetails: [{ imageDigest: 'sha256:abc', imageTags: ['latest'] }] });
    await expect(verifyImage(input, testContext())).rejects.toThrow(/lacks the tags ami-1/);
  });
});

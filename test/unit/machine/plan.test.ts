import { describe, expect, it } from '@jest/globals';
import { newRunId, repositoryNameFromAmiName, tagList, resourceTags } from '../../../src/machine/names.js';
import { normalisePlan, parseDuration, UsageError } from '../../../src/machine/plan.js';

describe('normalisePlan', () => {
  const now = new Date('2026-12-04T19:45:01.000Z');

  it('fills defaults the way --help documents them', () => {
    const plan = normalisePlan({ amiName: 'web', region: 'eu-west-1' }, now, 'run-1');
    expect(plan).toMatchObject({
      runId: 'run-1', region: 'eu-west-1', ami: { name: 'web', owners: [] }, imageTags: ['latest'], tagWithAmiId: true,
      compression: 'gzip', maxRuntimeSeconds: 3600, ssmOnlineTimeoutSeconds: 600, keepOnFailure: false, pull: false,
      createdAt: '2026-12-04T19:45:01.000Z', expiresAt: '2026-12-04T20:45:01.000Z',
    });
    expect(plan.ecrRepository).toBeUndefined();
  });

  it('keeps the user\'s tags only, deduplicated, when any is given', () => {
    const plan = normalisePlan({ amiId: 'ami-0123456789abcdef0', region: 'us-east-1', tag: ['v1', 'v1', 'stable'] }, now);
    expect(plan.imageTags).toEqual(['v1', 'stable']);
    expect(plan.tagWithAmiId).toBe(false);
  });

  it('normalises changes and excludes', () => {
    const plan = normalisePlan({ amiName: 'a', region: 'us-east-1', change: ['  ENV A=1 '], exclude: ['/var/cache/'] }, now);
    expect(plan.changes).toEqual(['ENV A=1']);
    expect(plan.excludes).toEqual(['/var/cache']);
  });

  it.each([
    [{ amiName: 'a', amiId: 'ami-0123456789abcdef0' }, /pass only one/],
    [{}, /no AMI given/],
    [{ amiName: 'a', exclude: ['/a/../etc'] }, /without '\.\.'/],
    [{ amiName: 'a', change: ['ENV'] }, /not an instruction/],
    [{ amiName: 'a', ssmBucket: 'Bad_Bucket' }, /not a valid S3 bucket name/],
    [{ amiName: 'a', maxRuntime: '25h' }, /between 1m and 24h/],
    [{ amiName: 'a', compression: 'brotli' }, /gzip or zstd/],
  ])('rejects %j', (options, message) => {
    expect(() => normalisePlan({ region: 'us-east-1', ...options }, now)).toThrow(UsageError);
    expect(() => normalisePlan({ region: 'us-east-1', ...options }, now)).toThrow(message);
  });

  it('parses durations in seconds, minutes (the default unit) and hours', () => {
    expect(parseDuration('90s', 'x')).toBe(90);
    expect(parseDuration('45', 'x')).toBe(2700);
    expect(parseDuration('1.5h', 'x')).toBe(5400);
    expect(() => parseDuration('1d', '--max-runtime')).toThrow(/--max-runtime '1d'/);
  });
});

describe('names', () => {
  it('makes sortable run ids valid in every AWS name', () => {
    const id = newRunId(new Date('2026-12-04T19:45:01.123Z'), () => 0.5);
    expect(id).toBe('20261204-194501-8000');
    expect(`ami2docker-${id}`).toMatch(/^[\w+=,.@-]{1,128}$/);
  });

  it.each([
    ['My Web Server (2024)', 'my-web-server-2024'],
    ['amzn2-ami-hvm-2.0.20240521.0-x86_64-gp2', 'amzn2-ami-hvm-2.0.20240521.0-x86_64-gp2'],
    ['team/App__Image--v1.', 'team/app-image-v1'],
    ['__', 'ami-image'],
    ['Ünïcode ☃ name', 'unicode-name'],
  ])('names the repository for AMI %j as %j', (ami, repository) => {
    const name = repositoryNameFromAmiName(ami);
    expect(name).toBe(repository);
    expect(name).toMatch(/^(?=.{2,256}$)[a-z0-9]+(?:[._-][a-z0-9]+)*(?:\/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$/);
  });

  it('lists the four tags every resource carries', () => {
    expect(tagList(resourceTags('run-1', '2026-12-04T20:45:01.000Z', 'ami2docker volume run-1'))).toEqual([
      { Key: 'ami2docker:run-id', Value: 'run-1' },
      { Key: 'ami2docker:created-by', Value: 'ami2docker' },
      { Key: 'ami2docker:expires-at', Value: '2026-12-04T20:45:01.000Z' },
      { Key: 'Name', Value: 'ami2docker volume run-1' },
    ]);
  });
});

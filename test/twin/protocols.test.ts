// The model-driven wire layer on its own: query forms in, XML out, EC2 filters, aws-chunked bodies.
import { describe, expect, it } from '@jest/globals';
import { XMLParser } from 'fast-xml-parser';
import { loadModel } from './protocols/model.js';
import { ec2ErrorBody, parseQueryInput, serializeQueryOutput } from './protocols/query.js';
import { decodeAwsChunked } from './protocols/restxml.js';
import { AwsError } from './errors.js';
import { applyFilters, wildcard } from './services/filters.js';
import { readPrefix, TRUNCATED_SUFFIX } from './dataplane/commands.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const xml = new XMLParser({ ignoreAttributes: false, parseTagValue: false });

describe('EC2 query requests', () => {
  const ec2 = loadModel('ec2');

  it('reads flattened lists, filters and tag specifications by their EC2 wire names', () => {
    const form = new URLSearchParams({
      Action: 'RunInstances',
      ImageId: 'ami-0123456789abcdef0',
      MinCount: '1',
      MaxCount: '1',
      'SecurityGroupId.1': 'sg-1',
      'SecurityGroupId.2': 'sg-2',
      'IamInstanceProfile.Name': 'helper',
      'MetadataOptions.HttpTokens': 'required',
      'TagSpecification.1.ResourceType': 'instance',
      'TagSpecification.1.Tag.1.Key': 'Name',
      'TagSpecification.1.Tag.1.Value': 'x',
      'TagSpecification.2.ResourceType': 'volume',
      'TagSpecification.2.Tag.1.Key': 'run',
      'TagSpecification.2.Tag.1.Value': 'r1',
      DryRun: 'true',
    });
    expect(parseQueryInput(ec2, 'RunInstances', form, 'ec2')).toEqual({
      ImageId: 'ami-0123456789abcdef0',
      MinCount: 1,
      MaxCount: 1,
      SecurityGroupIds: ['sg-1', 'sg-2'],
      IamInstanceProfile: { Name: 'helper' },
      MetadataOptions: { HttpTokens: 'required' },
      TagSpecifications: [
        { ResourceType: 'instance', Tags: [{ Key: 'Name', Value: 'x' }] },
        { ResourceType: 'volume', Tags: [{ Key: 'run', Value: 'r1' }] },
      ],
      DryRun: true,
    });
  });

  it('reads Filter.N.Name / Filter.N.Value.M', () => {
    const form = new URLSearchParams({
      'Filter.1.Name': 'name',
      'Filter.1.Value.1': 'debian-*',
      'Filter.1.Value.2': 'ubuntu-?',
      'Owner.1': 'self',
    });
    expect(parseQueryInput(ec2, 'DescribeImages', form, 'ec2')).toEqual({
      Filters: [{ Name: 'name', Values: ['debian-*', 'ubuntu-?'] }],
      Owners: ['self'],
    });
  });

  it('writes responses with EC2 element names, item lists and the 2016-11-15 namespace', () => {
    const body = serializeQueryOutput(ec2, 'DescribeVolumes', {
      Volumes: [{ VolumeId: 'vol-1', Size: 8, Encrypted: false, CreateTime: new Date('2026-01-02T03:04:05Z'), Tags: [{ Key: 'k', Value: 'v' }], Attachments: [] }],
    }, 'ec2', 'req-1');
    const parsed = xml.parse(body).DescribeVolumesResponse;
    expect(parsed['@_xmlns']).toBe('http://ec2.amazonaws.com/doc/2016-11-15/');
    expect(parsed.requestId).toBe('req-1');
    expect(parsed.volumeSet.item).toEqual({
      attachmentSet: '',
      createTime: '2026-01-02T03:04:05.000Z',
      encrypted: 'false',
      size: '8',
      tagSet: { item: { key: 'k', value: 'v' } },
      volumeId: 'vol-1',
    });
  });

  it('refuses to write a member the model does not have', () => {
    expect(() => serializeQueryOutput(ec2, 'DescribeVolumes', { Volumes: [{ VolumeID: 'vol-1' }] }, 'ec2', 'r')).toThrow(/no member VolumeID/);
  });

  it('writes errors in the EC2 Response/Errors/Error shape', () => {
    const parsed = xml.parse(ec2ErrorBody(new AwsError('InvalidAMIID.NotFound', "The image id '[ami-1]' does not exist"), 'req-2'));
    expect(parsed.Response).toEqual({ Errors: { Error: { Code: 'InvalidAMIID.NotFound', Message: "The image id '[ami-1]' does not exist" } }, RequestID: 'req-2' });
  });
});

describe('IAM query requests', () => {
  const iam = loadModel('iam');

  it('reads member.N lists and wraps the answer in <OpResult> and ResponseMetadata', () => {
    const form = new URLSearchParams({ RoleName: 'r', AssumeRolePolicyDocument: '{}', 'Tags.member.1.Key': 'a', 'Tags.member.1.Value': 'b' });
    expect(parseQueryInput(iam, 'CreateRole', form, 'query')).toEqual({ RoleName: 'r', AssumeRolePolicyDocument: '{}', Tags: [{ Key: 'a', Value: 'b' }] });
    const parsed = xml.parse(serializeQueryOutput(iam, 'ListRolePolicies', { PolicyNames: ['p1', 'p2'], IsTruncated: false }, 'query', 'req-3'));
    expect(parsed.ListRolePoliciesResponse.ListRolePoliciesResult).toEqual({ PolicyNames: { member: ['p1', 'p2'] }, IsTruncated: 'false' });
    expect(parsed.ListRolePoliciesResponse.ResponseMetadata).toEqual({ RequestId: 'req-3' });
  });
});

describe('EC2 filters', () => {
  const items = [
    { name: 'debian-12-amd64-20240101', arch: 'x86_64', tags: [{ Key: 'team', Value: 'a' }] },
    { name: 'debian-12-arm64-20240101', arch: 'arm64', tags: [] },
    { name: 'ubuntu-24.04', arch: 'x86_64', tags: [{ Key: 'team', Value: 'b' }] },
  ];
  const fields = { name: (i: (typeof items)[number]) => i.name, architecture: (i: (typeof items)[number]) => i.arch };

  it('ANDs filters, ORs values, and supports * and ? wildcards and tag filters', () => {
    expect(applyFilters(items, [{ Name: 'name', Values: ['debian-*'] }, { Name: 'architecture', Values: ['arm64'] }], fields).map((i) => i.name))
      .toEqual(['debian-12-arm64-20240101']);
    expect(applyFilters(items, [{ Name: 'name', Values: ['ubuntu-24.0?', 'nothing'] }], fields)).toHaveLength(1);
    expect(applyFilters(items, [{ Name: 'tag:team', Values: ['b'] }], fields).map((i) => i.name)).toEqual(['ubuntu-24.04']);
    expect(applyFilters(items, [{ Name: 'tag-key', Values: ['team'] }], fields)).toHaveLength(2);
  });

  it('refuses an unknown filter name as EC2 does', () => {
    expect(() => applyFilters(items, [{ Name: 'nmae', Values: ['x'] }], fields)).toThrow("The filter 'nmae' is invalid");
  });

  it('treats regular-expression characters literally', () => {
    expect(wildcard('a.b*').test('a.bc')).toBe(true);
    expect(wildcard('a.b*').test('axbc')).toBe(false);
  });
});

describe('wire details', () => {
  it('decodes aws-chunked bodies, signed or with trailing checksums', () => {
    const body = Buffer.from('5;chunk-signature=abc\r\nhello\r\n6;chunk-signature=def\r\n world\r\n0;chunk-signature=0\r\nx-amz-checksum-crc32:AAAA\r\n\r\n');
    expect(decodeAwsChunked(body).toString()).toBe('hello world');
  });

  it('truncates command output as the SSM agent does: limit bytes, ending in its marker', () => {
    const dir = mkdtempSync(join(tmpdir(), 'twin-prefix-'));
    try {
      writeFileSync(join(dir, 'short'), 'x'.repeat(99));
      writeFileSync(join(dir, 'long'), 'y'.repeat(150));
      expect(readPrefix(join(dir, 'short'), 100)).toBe('x'.repeat(99));
      const truncated = readPrefix(join(dir, 'long'), 100);
      expect(truncated).toHaveLength(100);
      expect(truncated).toBe('y'.repeat(100 - TRUNCATED_SUFFIX.length) + TRUNCATED_SUFFIX);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

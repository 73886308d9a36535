import { afterAll, beforeEach, describe, expect, it } from '@jest/globals';
import { GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { GetCommandInvocationCommand, ListCommandsCommand, SendCommandCommand } from '@aws-sdk/client-ssm';
import { awaitConversion, sendConversion } from '../../../src/effects/commands.js';
import { RemoteError, TimeoutError } from '../../../src/effects/errors.js';
import type { ConversionSpec } from '../../../src/machine/types.js';
import { TAGS, awsError, inSeconds, mocks, resetAll, restoreAll, testContext } from './helpers.js';

const m = mocks();
afterAll(() => restoreAll(m));
beforeEach(() => resetAll(m));

const runId = TAGS.runId;
const spec: ConversionSpec = {
  volumeId: 'vol-1',
  device: '/dev/sdf',
  repositoryUri: 'registry.example/team/web',
  tags: ['latest'],
  architecture: 'x86_64',
  region: 'eu-west-1',
  ami: { id: 'ami-1', name: 'web', creationDate: '2025-01-01T00:00:00.000Z' },
  changes: [],
  excludes: [],
  compression: 'gzip',
};
const RESULT = { imageUri: 'registry.example/team/web@sha256:feed', digest: 'sha256:feed', tags: ['latest'] };
const RESULT_LINE = `AMI2DOCKER_RESULT ${JSON.stringify(RESULT)}`;

describe('sendConversion', () => {
  it('sends the rendered script once, commented with the run id, with the execution timeout and S3 output', async () => {
    m.ssm.on(ListCommandsCommand).resolves({ Commands: [] });
    m.ssm.on(SendCommandCommand).resolves({ Command: { CommandId: 'cmd-1' } });
    const sent = await sendConversion({ instanceId: 'i-1', runId, spec, bucket: 'out', executionTimeoutSeconds: 5400 }, testContext());
    expect(sent).toEqual({ commandId: 'cmd-1' });
    const request = m.ssm.commandCalls(SendCommandCommand)[0].args[0].input;
    expect(request).toMatchObject({
      InstanceIds: ['i-1'],
      DocumentName: 'AWS-RunShellScript',
      Comment: `ami2docker ${runId}`,
      OutputS3BucketName: 'out',
      OutputS3KeyPrefix: `ami2docker/${runId}/`,
    });
    expect(request.Parameters?.executionTimeout).toEqual(['5400']);
    expect(request.Parameters?.commands).toHaveLength(1);
    expect(request.Parameters?.commands?.[0]).toContain("export A2D_VOLUME_ID='vol-1'");
    expect(request.Parameters?.commands?.[0]).toContain('bash "$a2d_script" </dev/null');
  });

  it('leaves S3 output out without a bucket', async () => {
    m.ssm.on(ListCommandsCommand).resolves({ Commands: [] });
    m.ssm.on(SendCommandCommand).resolves({ Command: { CommandId: 'cmd-1' } });
    await sendConversion({ instanceId: 'i-1', runId, spec, executionTimeoutSeconds: 3600 }, testContext());
    const request = m.ssm.commandCalls(SendCommandCommand)[0].args[0].input;
    expect(request).not.toHaveProperty('OutputS3BucketName');
    expect(request).not.toHaveProperty('OutputS3KeyPrefix');
  });

  it('finds the command an earlier attempt sent, by its comment, across pages, instead of sending twice', async () => {
    m.ssm.on(ListCommandsCommand)
      .resolvesOnce({ Commands: [{ CommandId: 'cmd-other', Comment: 'ami2docker another-run', DocumentName: 'AWS-RunShellScript' }], NextToken: 'p2' })
      .resolves({ Commands: [{ CommandId: 'cmd-earlier', Comment: `ami2docker ${runId}`, DocumentName: 'AWS-RunShellScript' }] });
    expect(await sendConversion({ instanceId: 'i-1', runId, spec, executionTimeoutSeconds: 3600 }, testContext())).toEqual({ commandId: 'cmd-earlier' });
    expect(m.ssm.commandCalls(SendCommandCommand)).toHaveLength(0);
    expect(m.ssm.commandCalls(ListCommandsCommand).map((c) => c.args[0].input)).toEqual([{ InstanceId: 'i-1' }, { InstanceId: 'i-1', NextToken: 'p2' }]);
  });
});

describe('awaitConversion', () => {
  const input = { commandId: 'cmd-1', instanceId: 'i-1', runId, deadline: inSeconds(30) };

  it('tolerates InvocationDoesNotExist, streams new output once, parses steps and the result', async () => {
    m.ssm.on(GetCommandInvocationCommand)
      .rejectsOnce(awsError('InvocationDoesNotExist'))
      .resolvesOnce({ Status: 'InProgress', StandardOutputContent: 'AMI2DOCKER_STEP mount mounting /dev/nvme1n1p1\nplain out' })
      .resolvesOnce({ Status: 'InProgress', StandardOutputContent: 'AMI2DOCKER_STEP mount mounting /dev/nvme1n1p1\nplain output\nAMI2DOCKER_STEP push pushing 3 MB\n' })
      .resolves({ Status: 'Success', StandardOutputContent: `AMI2DOCKER_STEP mount mounting /dev/nvme1n1p1\nplain output\nAMI2DOCKER_STEP push pushing 3 MB\nAMI2DOCKER_RESULT {"imageUri":"x","digest":"sha256:old","tags":[]}\ntail\n${RESULT_LINE}\n` });
    const ctx = testContext();
    expect(await awaitConversion(input, ctx)).toEqual(RESULT);
    expect(ctx.reports.map(({ type, step, message }) => [type, step, message])).toEqual([
      ['step', 'mount', 'mounting /dev/nvme1n1p1'],
      ['output', 'convert', 'plain output'],
      ['step', 'push', 'pushing 3 MB'],
      ['output', 'convert', 'tail'],
    ]);
    expect(m.ssm.commandCalls(GetCommandInvocationCommand)[0].args[0].input).toEqual({ CommandId: 'cmd-1', InstanceId: 'i-1' });
  });

  it('turns the script error line into a RemoteError naming its step', async () => {
    m.ssm.on(GetCommandInvocationCommand).resolves({
      Status: 'Failed',
      ResponseCode: 1,
      StandardOutputContent: 'AMI2DOCKER_STEP push pushing\n',
      StandardErrorContent: 'curl: (22) 403\nAMI2DOCKER_ERROR push: the registry refused the upload (HTTP 403)\n',
    });
    const failure = await awaitConversion(input, testContext()).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(RemoteError);
    expect(failure).toMatchObject({ step: 'push', remoteMessage: 'the registry refused the upload (HTTP 403)', status: 'Failed' });
  });

  it('explains a timeout of the command itself without an error line', async () => {
    m.ssm.on(GetCommandInvocationCommand).resolves({ Status: 'TimedOut', StatusDetails: 'ExecutionTimedOut', ResponseCode: -1, StandardErrorContent: '' });
    await expect(awaitConversion(input, testContext())).rejects.toMatchObject({ name: 'RemoteError', step: 'timeout', message: expect.stringMatching(/execution timeout \(ExecutionTimedOut\)/) });
  });

  it('reads the full output from S3 when SSM truncated it', async () => {
    const longOutput = `${'x'.repeat(100)}\n`.repeat(300);
    const fullStdout = `${longOutput}${RESULT_LINE}\n`;
    m.ssm.on(GetCommandInvocationCommand).resolves({ Status: 'Success', StandardOutputContent: `${fullStdout.slice(0, 24000)}\n---Output truncated---`, StandardErrorContent: 'warning\n---Error truncated----' });
    const prefix = `ami2docker/${runId}/`;
    m.s3.on(ListObjectsV2Command).resolves({ Contents: [
      { Key: `${prefix}cmd-other/i-1/awsrunShellScript/0.awsrunShellScript/stdout` },
      { Key: `${prefix}cmd-1/i-1/awsrunShellScript/0.awsrunShellScript/stderr` },
      { Key: `${prefix}cmd-1/i-1/awsrunShellScript/0.awsrunShellScript/stdout` },
    ] });
    const bodies: Record<string, string> = {
      [`${prefix}cmd-1/i-1/awsrunShellScript/0.awsrunShellScript/stdout`]: fullStdout,
      [`${prefix}cmd-1/i-1/awsrunShellScript/0.awsrunShellScript/stderr`]: '',
    };
    m.s3.on(GetObjectCommand).callsFake((request: { Key: string }) => ({ Body: { transformToString: async () => bodies[request.Key] } }));
    const ctx = testContext();
    expect(await awaitConversion({ ...input, bucket: 'out' }, ctx)).toEqual(RESULT);
    expect(m.s3.commandCalls(ListObjectsV2Command)[0].args[0].input).toMatchObject({ Bucket: 'out', Prefix: prefix });
    // Every line was reported exactly once, the truncation marker never.
    const outputs = ctx.reports.filter((r) => r.type === 'output');
    expect(outputs).toHaveLength(300);
    expect(outputs.every((r) => r.message === 'x'.repeat(100))).toBe(true);
  });

  it('says to use a bucket when the result line was cut off and there is none', async () => {
    m.ssm.on(GetCommandInvocationCommand).resolves({ Status: 'Success', StandardOutputContent: `${'y'.repeat(24000)}\n---Output truncated---` });
    await expect(awaitConversion(input, testContext())).rejects.toThrow(/truncated .*pass --ssm-bucket/);
  });

  it('times out at the deadline while the command still runs', async () => {
    m.ssm.on(GetCommandInvocationCommand).resolves({ Status: 'InProgress', StandardOutputContent: '' });
    await expect(awaitConversion({ ...input, deadline: inSeconds(0.03) }, testContext())).rejects.toBeInstanceOf(TimeoutError);
  });
});

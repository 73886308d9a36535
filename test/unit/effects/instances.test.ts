import { afterAll, beforeEach, describe, expect, it } from '@jest/globals';
import { DescribeInstancesCommand, RunInstancesCommand, TerminateInstancesCommand, type Instance } from '@aws-sdk/client-ec2';
import { DescribeInstanceInformationCommand } from '@aws-sdk/client-ssm';
import { removeInstance, runInstance, waitForAgent, waitForInstance } from '../../../src/effects/instances.js';
import { TimeoutError } from '../../../src/effects/errors.js';
import { tagList } from '../../../src/machine/names.js';
import type { RunInstanceInput } from '../../../src/machine/types.js';
import { TAGS, awsError, inSeconds, mocks, past, resetAll, restoreAll, tagKeys, testContext } from './helpers.js';

const m = mocks();
afterAll(() => restoreAll(m));
beforeEach(() => resetAll(m));

const PROFILE_ERROR = 'Value (ami2docker-helper) for parameter iamInstanceProfile.name is invalid. Invalid IAM Instance Profile name';

function runInput(overrides: Partial<RunInstanceInput> = {}): RunInstanceInput {
  return {
    clientToken: 'ami2docker-run-instance',
    imageId: 'ami-helper',
    instanceType: 'c7g.large',
    subnetId: 'subnet-a',
    securityGroupId: 'sg-run',
    instanceProfileName: 'ami2docker-helper',
    maxRuntimeSeconds: 5401,
    tags: TAGS,
    propagationDeadline: inSeconds(30),
    ...overrides,
  };
}

const reservation = (...instances: Instance[]) => ({ Reservations: [{ Instances: instances }] });
const instance = (id: string, state: string, tags = tagList(TAGS)): Instance => ({ InstanceId: id, State: { Name: state as never }, Tags: tags });

describe('runInstance', () => {
  beforeEach(() => {
    m.ec2.on(DescribeInstancesCommand).resolves({ Reservations: [] });
    m.ec2.on(RunInstancesCommand).resolves({ Instances: [{ InstanceId: 'i-new' }] });
  });

  it('launches a locked-down, self-terminating helper tagged at creation, instance and volume', async () => {
    expect(await runInstance(runInput(), testContext())).toEqual({ instanceId: 'i-new' });
    const calls = m.ec2.commandCalls(RunInstancesCommand);
    expect(calls).toHaveLength(1);
    const request = calls[0].args[0].input;
    expect(request).toMatchObject({
      ClientToken: 'ami2docker-run-instance',
      ImageId: 'ami-helper',
      InstanceType: 'c7g.large',
      MinCount: 1,
      MaxCount: 1,
      SubnetId: 'subnet-a',
      SecurityGroupIds: ['sg-run'],
      IamInstanceProfile: { Name: 'ami2docker-helper' },
      MetadataOptions: { HttpTokens: 'required', HttpEndpoint: 'enabled' },
      InstanceInitiatedShutdownBehavior: 'terminate',
    });
    expect(request).not.toHaveProperty('KeyName');
    expect(request.TagSpecifications).toEqual([
      { ResourceType: 'instance', Tags: tagList(TAGS) },
      { ResourceType: 'volume', Tags: tagList(TAGS) },
    ]);
    expect(tagKeys(request.TagSpecifications?.[0].Tags)).toEqual(['Name', 'ami2docker:created-by', 'ami2docker:expires-at', 'ami2docker:run-id']);
    const userData = Buffer.from(request.UserData ?? '', 'base64').toString('utf8');
    expect(userData.startsWith('#!/bin/bash\n')).toBe(true);
    // 5401 s is 90 min and 1 s: the switch rounds up, never fires early.
    expect(userData).toMatch(/^shutdown -h \+91\b/m);
  });

  it('finds the instance of an earlier attempt by its client token instead of launching another', async () => {
    m.ec2.on(DescribeInstancesCommand).resolves(reservation(instance('i-earlier', 'pending')));
    expect(await runInstance(runInput(), testContext())).toEqual({ instanceId: 'i-earlier' });
    expect(m.ec2.commandCalls(RunInstancesCommand)).toHaveLength(0);
    expect(m.ec2.commandCalls(DescribeInstancesCommand)[0].args[0].input.Filters).toContainEqual({ Name: 'client-token', Values: ['ami2docker-run-instance'] });
  });

  it('retries the instance-profile propagation error with the same token, reporting each retry', async () => {
    m.ec2.on(RunInstancesCommand)
      .rejectsOnce(awsError('InvalidParameterValue', PROFILE_ERROR))
      .rejectsOnce(awsError('InvalidParameterValue', PROFILE_ERROR))
      .resolves({ Instances: [{ InstanceId: 'i-late' }] });
    const ctx = testContext();
    expect(await runInstance(runInput(), ctx)).toEqual({ instanceId: 'i-late' });
    const tokens = m.ec2.commandCalls(RunInstancesCommand).map((call) => call.args[0].input.ClientToken);
    expect(tokens).toEqual(['ami2docker-run-instance', 'ami2docker-run-instance', 'ami2docker-run-instance']);
    expect(ctx.reports.filter((r) => /not visible to EC2 yet/.test(r.message))).toHaveLength(2);
  });

  it('does not retry any other InvalidParameterValue', async () => {
    m.ec2.on(RunInstancesCommand).rejects(awsError('InvalidParameterValue', 'Value (c7g.large) for parameter instanceType is invalid'));
    await expect(runInstance(runInput(), testContext())).rejects.toMatchObject({ name: 'InvalidParameterValue' });
    expect(m.ec2.commandCalls(RunInstancesCommand)).toHaveLength(1);
  });

  it('gives up on propagation at the deadline with the AWS error', async () => {
    m.ec2.on(RunInstancesCommand).rejects(awsError('InvalidParameterValue', PROFILE_ERROR));
    await expect(runInstance(runInput({ propagationDeadline: past() }), testContext())).rejects.toThrow(/iamInstanceProfile/);
    expect(m.ec2.commandCalls(RunInstancesCommand)).toHaveLength(1);
  });
});

describe('waitForInstance', () => {
  it('waits until the instance is running, without asking SSM', async () => {
    m.ec2.on(DescribeInstancesCommand)
      .rejectsOnce(awsError('InvalidInstanceID.NotFound'))
      .resolvesOnce(reservation(instance('i-1', 'pending')))
      .resolves(reservation(instance('i-1', 'running')));
    expect(await waitForInstance({ instanceId: 'i-1', deadline: inSeconds(30) }, testContext())).toEqual({ instanceId: 'i-1' });
    expect(m.ec2.commandCalls(DescribeInstancesCommand)).toHaveLength(3);
    expect(m.ssm.commandCalls(DescribeInstanceInformationCommand)).toHaveLength(0);
  });

  it('fails at once when the instance terminates instead of starting', async () => {
    m.ec2.on(DescribeInstancesCommand).resolves(reservation({ ...instance('i-1', 'terminated'), StateReason: { Message: 'Client.InternalError' } }));
    await expect(waitForInstance({ instanceId: 'i-1', deadline: inSeconds(30) }, testContext())).rejects.toThrow(/i-1 is terminated.*Client.InternalError/);
  });

  it('stops waiting when the run is interrupted', async () => {
    m.ec2.on(DescribeInstancesCommand).resolves(reservation(instance('i-1', 'pending')));
    const controller = new AbortController();
    const ctx = { ...testContext(), pollSeconds: 0.02, signal: controller.signal };
    setTimeout(() => controller.abort(), 30);
    await expect(waitForInstance({ instanceId: 'i-1', deadline: inSeconds(30) }, ctx)).rejects.toMatchObject({ name: 'AbortError' });
  });
});

describe('waitForAgent', () => {
  it('waits for the SSM agent to be online', async () => {
    m.ssm.on(DescribeInstanceInformationCommand)
      .resolvesOnce({ InstanceInformationList: [] })
      .resolvesOnce({ InstanceInformationList: [{ InstanceId: 'i-1', PingStatus: 'ConnectionLost' }] })
      .resolves({ InstanceInformationList: [{ InstanceId: 'i-1', PingStatus: 'Online' }] });
    expect(await waitForAgent({ instanceId: 'i-1', deadline: inSeconds(30) }, testContext())).toEqual({ instanceId: 'i-1' });
    expect(m.ssm.commandCalls(DescribeInstanceInformationCommand)).toHaveLength(3);
    expect(m.ssm.commandCalls(DescribeInstanceInformationCommand)[0].args[0].input).toEqual({ Filters: [{ Key: 'InstanceIds', Values: ['i-1'] }] });
  });

  it('times out naming the likely causes when the agent never comes online', async () => {
    m.ssm.on(DescribeInstanceInformationCommand).resolves({ InstanceInformationList: [] });
    const attempt = waitForAgent({ instanceId: 'i-1', deadline: inSeconds(0.05) }, testContext());
    await expect(attempt).rejects.toBeInstanceOf(TimeoutError);
    await expect(attempt).rejects.toThrow(/ssmmessages.*ec2messages.*SSM agent.*AmazonSSMManagedInstanceCore.*IMDS/);
  });
});

describe('removeInstance', () => {
  const input = { runId: TAGS.runId, clientToken: 'ami2docker-run-instance', deadline: inSeconds(30) };

  it('terminates what carries the run tag, found by tag, token or id, and waits for terminated', async () => {
    m.ec2.on(DescribeInstancesCommand, { Filters: [{ Name: `tag:ami2docker:run-id`, Values: [TAGS.runId] }, { Name: 'instance-state-name', Values: ['pending', 'running', 'stopping', 'stopped', 'shutting-down'] }] })
      .resolves(reservation(instance('i-tagged', 'running')));
    m.ec2.on(DescribeInstancesCommand, { Filters: [{ Name: 'client-token', Values: ['ami2docker-run-instance'] }, { Name: 'instance-state-name', Values: ['pending', 'running', 'stopping', 'stopped', 'shutting-down'] }] })
      .resolves(reservation(instance('i-tagged', 'running')));
    let terminated = false;
    m.ec2.on(TerminateInstancesCommand).callsFake(() => { terminated = true; return {}; });
    m.ec2.on(DescribeInstancesCommand, { InstanceIds: ['i-stranger'] }).resolves(reservation(instance('i-stranger', 'running', [{ Key: 'Name', Value: 'not ours' }])));
    m.ec2.on(DescribeInstancesCommand, { InstanceIds: ['i-tagged'] }).callsFake(() => reservation(instance('i-tagged', terminated ? 'terminated' : 'shutting-down')));
    const result = await removeInstance({ ...input, instanceId: 'i-stranger' }, testContext());
    expect(result).toEqual({ removed: ['i-tagged'] });
    expect(m.ec2.commandCalls(TerminateInstancesCommand).map((c) => c.args[0].input.InstanceIds)).toEqual([['i-tagged']]);
  });

  it('tolerates an instance already gone', async () => {
    m.ec2.on(DescribeInstancesCommand).resolves({ Reservations: [] });
    m.ec2.on(DescribeInstancesCommand, { InstanceIds: ['i-gone'] }).rejects(awsError('InvalidInstanceID.NotFound'));
    expect(await removeInstance({ ...input, instanceId: 'i-gone' }, testContext())).toEqual({ removed: [] });
    expect(m.ec2.commandCalls(TerminateInstancesCommand)).toHaveLength(0);
  });

  it('accepts NotFound from TerminateInstances when the instance vanished in between', async () => {
    m.ec2.on(DescribeInstancesCommand).resolves(reservation(instance('i-1', 'running')));
    m.ec2.on(DescribeInstancesCommand, { InstanceIds: ['i-1'] }).rejects(awsError('InvalidInstanceID.NotFound'));
    m.ec2.on(TerminateInstancesCommand).rejects(awsError('InvalidInstanceID.NotFound'));
    expect(await removeInstance(input, testContext())).toEqual({ removed: ['i-1'] });
  });
});

import { afterAll, beforeEach, describe, expect, it } from '@jest/globals';
import { CreateSecurityGroupCommand, DeleteSecurityGroupCommand, DescribeSecurityGroupsCommand } from '@aws-sdk/client-ec2';
import { createSecurityGroup, removeSecurityGroup } from '../../../src/effects/network.js';
import { TimeoutError } from '../../../src/effects/errors.js';
import { tagList } from '../../../src/machine/names.js';
import { TAGS, awsError, inSeconds, mocks, resetAll, restoreAll, testContext } from './helpers.js';

const m = mocks();
afterAll(() => restoreAll(m));
beforeEach(() => resetAll(m));

const input = { vpcId: 'vpc-1', groupName: 'ami2docker-run', tags: TAGS };

describe('createSecurityGroup', () => {
  it('creates the group in the VPC, tagged at creation, with no inbound rule added', async () => {
    m.ec2.on(DescribeSecurityGroupsCommand).resolves({ SecurityGroups: [] });
    m.ec2.on(CreateSecurityGroupCommand).resolves({ GroupId: 'sg-new' });
    expect(await createSecurityGroup(input, testContext())).toEqual({ groupId: 'sg-new' });
    const request = m.ec2.commandCalls(CreateSecurityGroupCommand)[0].args[0].input;
    expect(request).toMatchObject({ GroupName: 'ami2docker-run', VpcId: 'vpc-1', TagSpecifications: [{ ResourceType: 'security-group', Tags: tagList(TAGS) }] });
    // Only the lookup and the create: no ingress authorisation, no later tagging.
    expect(m.ec2.calls().map((call) => call.args[0].constructor.name)).toEqual(['DescribeSecurityGroupsCommand', 'CreateSecurityGroupCommand']);
  });

  it('finds the group of an earlier attempt by name in the VPC', async () => {
    m.ec2.on(DescribeSecurityGroupsCommand).resolves({ SecurityGroups: [{ GroupId: 'sg-earlier', GroupName: 'ami2docker-run' }] });
    expect(await createSecurityGroup(input, testContext())).toEqual({ groupId: 'sg-earlier' });
    expect(m.ec2.commandCalls(CreateSecurityGroupCommand)).toHaveLength(0);
    expect(m.ec2.commandCalls(DescribeSecurityGroupsCommand)[0].args[0].input.Filters).toEqual([
      { Name: 'vpc-id', Values: ['vpc-1'] },
      { Name: 'group-name', Values: ['ami2docker-run'] },
    ]);
  });

  it('takes the group that won a creation race', async () => {
    m.ec2.on(DescribeSecurityGroupsCommand).resolvesOnce({ SecurityGroups: [] }).resolves({ SecurityGroups: [{ GroupId: 'sg-raced' }] });
    m.ec2.on(CreateSecurityGroupCommand).rejects(awsError('InvalidGroup.Duplicate'));
    expect(await createSecurityGroup(input, testContext())).toEqual({ groupId: 'sg-raced' });
  });
});

describe('removeSecurityGroup', () => {
  const removeInput = { runId: TAGS.runId, groupName: 'ami2docker-run', vpcId: 'vpc-1', deadline: inSeconds(30) };

  it('retries DependencyViolation until the network interfaces are gone', async () => {
    m.ec2.on(DescribeSecurityGroupsCommand).resolves({ SecurityGroups: [{ GroupId: 'sg-1', Tags: tagList(TAGS) }] });
    m.ec2.on(DeleteSecurityGroupCommand)
      .rejectsOnce(awsError('DependencyViolation', 'resource sg-1 has a dependent object'))
      .rejectsOnce(awsError('DependencyViolation', 'resource sg-1 has a dependent object'))
      .resolves({});
    expect(await removeSecurityGroup({ ...removeInput, groupId: 'sg-1' }, testContext())).toEqual({ removed: ['sg-1'] });
    expect(m.ec2.commandCalls(DeleteSecurityGroupCommand)).toHaveLength(3);
  });

  it('gives up at the deadline', async () => {
    m.ec2.on(DescribeSecurityGroupsCommand).resolves({ SecurityGroups: [{ GroupId: 'sg-1', Tags: tagList(TAGS) }] });
    m.ec2.on(DeleteSecurityGroupCommand).rejects(awsError('DependencyViolation'));
    await expect(removeSecurityGroup({ ...removeInput, deadline: inSeconds(0.03) }, testContext())).rejects.toBeInstanceOf(TimeoutError);
  });

  it('tolerates a group already gone and leaves an untagged group alone', async () => {
    m.ec2.on(DescribeSecurityGroupsCommand).resolves({ SecurityGroups: [] });
    m.ec2.on(DescribeSecurityGroupsCommand, { GroupIds: ['sg-gone'] }).rejects(awsError('InvalidGroup.NotFound'));
    m.ec2.on(DescribeSecurityGroupsCommand, { GroupIds: ['sg-user'] }).resolves({ SecurityGroups: [{ GroupId: 'sg-user', Tags: [] }] });
    expect(await removeSecurityGroup({ ...removeInput, groupId: 'sg-gone' }, testContext())).toEqual({ removed: [] });
    expect(await removeSecurityGroup({ ...removeInput, groupId: 'sg-user' }, testContext())).toEqual({ removed: [] });
    expect(m.ec2.commandCalls(DeleteSecurityGroupCommand)).toHaveLength(0);

    m.ec2.on(DescribeSecurityGroupsCommand).resolves({ SecurityGroups: [{ GroupId: 'sg-1', Tags: tagList(TAGS) }] });
    m.ec2.on(DeleteSecurityGroupCommand).rejects(awsError('InvalidGroup.NotFound'));
    expect(await removeSecurityGroup(removeInput, testContext())).toEqual({ removed: ['sg-1'] });
  });
});

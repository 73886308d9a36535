import { afterAll, beforeEach, describe, expect, it } from '@jest/globals';
import {
  AttachVolumeCommand,
  CreateVolumeCommand,
  DeleteVolumeCommand,
  DescribeVolumesCommand,
  ModifyInstanceAttributeCommand,
  type Volume,
} from '@aws-sdk/client-ec2';
import { attachVolume, createVolume, removeVolume } from '../../../src/effects/volumes.js';
import { TimeoutError } from '../../../src/effects/errors.js';
import { tagList } from '../../../src/machine/names.js';
import type { CreateVolumeInput } from '../../../src/machine/types.js';
import { TAGS, awsError, inSeconds, mocks, resetAll, restoreAll, testContext } from './helpers.js';

const m = mocks();
afterAll(() => restoreAll(m));
beforeEach(() => resetAll(m));

const createInput = (overrides: Partial<CreateVolumeInput> = {}): CreateVolumeInput => ({
  clientToken: 'ami2docker-run-volume',
  snapshotId: 'snap-root',
  availabilityZone: 'eu-west-1c',
  sizeGiB: 12,
  encrypted: true,
  tags: TAGS,
  deadline: inSeconds(30),
  ...overrides,
});

const volume = (id: string, state: string, extra: Partial<Volume> = {}): Volume => ({ VolumeId: id, State: state as never, Tags: tagList(TAGS), ...extra });

describe('createVolume', () => {
  it('creates a gp3 volume in the subnet AZ with the snapshot size and encryption, tagged at creation, and waits for it', async () => {
    m.ec2.on(DescribeVolumesCommand).resolves({ Volumes: [] });
    m.ec2.on(CreateVolumeCommand).resolves({ VolumeId: 'vol-new' });
    m.ec2.on(DescribeVolumesCommand, { VolumeIds: ['vol-new'] })
      .rejectsOnce(awsError('InvalidVolume.NotFound'))
      .resolvesOnce({ Volumes: [volume('vol-new', 'creating')] })
      .resolves({ Volumes: [volume('vol-new', 'available')] });
    expect(await createVolume(createInput(), testContext())).toEqual({ volumeId: 'vol-new' });
    const request = m.ec2.commandCalls(CreateVolumeCommand)[0].args[0].input;
    expect(request).toEqual({
      ClientToken: 'ami2docker-run-volume',
      SnapshotId: 'snap-root',
      AvailabilityZone: 'eu-west-1c',
      Size: 12,
      VolumeType: 'gp3',
      Encrypted: true,
      TagSpecifications: [{ ResourceType: 'volume', Tags: tagList(TAGS) }],
    });
    expect(m.ec2.commandCalls(DescribeVolumesCommand, { VolumeIds: ['vol-new'] })).toHaveLength(3);
  });

  it('leaves encryption to EC2 defaults for an unencrypted snapshot', async () => {
    m.ec2.on(DescribeVolumesCommand).resolves({ Volumes: [] });
    m.ec2.on(CreateVolumeCommand).resolves({ VolumeId: 'vol-new' });
    m.ec2.on(DescribeVolumesCommand, { VolumeIds: ['vol-new'] }).resolves({ Volumes: [volume('vol-new', 'available')] });
    await createVolume(createInput({ encrypted: false }), testContext());
    expect(m.ec2.commandCalls(CreateVolumeCommand)[0].args[0].input).not.toHaveProperty('Encrypted');
  });

  it('finds the volume of an earlier attempt by run tag and Name instead of creating another', async () => {
    m.ec2.on(DescribeVolumesCommand).resolves({ Volumes: [volume('vol-earlier', 'available')] });
    expect(await createVolume(createInput(), testContext())).toEqual({ volumeId: 'vol-earlier' });
    expect(m.ec2.commandCalls(CreateVolumeCommand)).toHaveLength(0);
    const filters = m.ec2.commandCalls(DescribeVolumesCommand)[0].args[0].input.Filters;
    expect(filters).toContainEqual({ Name: 'tag:ami2docker:run-id', Values: [TAGS.runId] });
    expect(filters).toContainEqual({ Name: 'tag:Name', Values: [TAGS.name] });
  });

  it('fails when the volume ends in error, and times out at the deadline', async () => {
    m.ec2.on(DescribeVolumesCommand).resolves({ Volumes: [volume('vol-bad', 'error')] });
    await expect(createVolume(createInput(), testContext())).rejects.toThrow(/vol-bad failed to create/);
    m.ec2.on(DescribeVolumesCommand).resolves({ Volumes: [volume('vol-slow', 'creating')] });
    await expect(createVolume(createInput({ deadline: inSeconds(0.03) }), testContext())).rejects.toBeInstanceOf(TimeoutError);
  });
});

describe('attachVolume', () => {
  const input = { instanceId: 'i-1', volumeId: 'vol-1', device: '/dev/sdf', deadline: inSeconds(30) };

  it('attaches, waits for attached, then marks the volume DeleteOnTermination', async () => {
    m.ec2.on(DescribeVolumesCommand)
      .resolvesOnce({ Volumes: [volume('vol-1', 'available')] })
      .resolvesOnce({ Volumes: [volume('vol-1', 'in-use', { Attachments: [{ InstanceId: 'i-1', State: 'attaching', Device: '/dev/sdf' }] })] })
      .resolves({ Volumes: [volume('vol-1', 'in-use', { Attachments: [{ InstanceId: 'i-1', State: 'attached', Device: '/dev/sdf' }] })] });
    m.ec2.on(AttachVolumeCommand).resolves({});
    m.ec2.on(ModifyInstanceAttributeCommand).resolves({});
    expect(await attachVolume(input, testContext())).toEqual({ device: '/dev/sdf' });
    expect(m.ec2.commandCalls(AttachVolumeCommand)[0].args[0].input).toEqual({ InstanceId: 'i-1', VolumeId: 'vol-1', Device: '/dev/sdf' });
    expect(m.ec2.commandCalls(ModifyInstanceAttributeCommand)[0].args[0].input).toEqual({
      InstanceId: 'i-1',
      BlockDeviceMappings: [{ DeviceName: '/dev/sdf', Ebs: { VolumeId: 'vol-1', DeleteOnTermination: true } }],
    });
  });

  it('does not attach again when an earlier attempt already did', async () => {
    m.ec2.on(DescribeVolumesCommand).resolves({ Volumes: [volume('vol-1', 'in-use', { Attachments: [{ InstanceId: 'i-1', State: 'attached', Device: '/dev/sdf' }] })] });
    m.ec2.on(ModifyInstanceAttributeCommand).resolves({});
    await attachVolume(input, testContext());
    expect(m.ec2.commandCalls(AttachVolumeCommand)).toHaveLength(0);
    expect(m.ec2.commandCalls(ModifyInstanceAttributeCommand)).toHaveLength(1);
  });
});

describe('removeVolume', () => {
  it('waits for the instance termination to detach the volume, then deletes it', async () => {
    m.ec2.on(DescribeVolumesCommand).resolves({ Volumes: [volume('vol-1', 'in-use')] });
    m.ec2.on(DescribeVolumesCommand, { VolumeIds: ['vol-1'] })
      .resolvesOnce({ Volumes: [volume('vol-1', 'in-use')] })
      .resolves({ Volumes: [volume('vol-1', 'available')] });
    m.ec2.on(DeleteVolumeCommand).resolves({});
    expect(await removeVolume({ runId: TAGS.runId, volumeId: 'vol-1', deadline: inSeconds(30) }, testContext())).toEqual({ removed: ['vol-1'] });
    expect(m.ec2.commandCalls(DeleteVolumeCommand)[0].args[0].input).toEqual({ VolumeId: 'vol-1' });
  });

  it('is done when DeleteOnTermination already removed it, and never touches an untagged volume', async () => {
    m.ec2.on(DescribeVolumesCommand).resolves({ Volumes: [] });
    m.ec2.on(DescribeVolumesCommand, { VolumeIds: ['vol-gone'] }).rejects(awsError('InvalidVolume.NotFound'));
    m.ec2.on(DescribeVolumesCommand, { VolumeIds: ['vol-user'] }).resolves({ Volumes: [volume('vol-user', 'available', { Tags: [] })] });
    expect(await removeVolume({ runId: TAGS.runId, volumeId: 'vol-gone', deadline: inSeconds(30) }, testContext())).toEqual({ removed: [] });
    expect(await removeVolume({ runId: TAGS.runId, volumeId: 'vol-user', deadline: inSeconds(30) }, testContext())).toEqual({ removed: [] });
    expect(m.ec2.commandCalls(DeleteVolumeCommand)).toHaveLength(0);
  });

  it('tolerates NotFound from DeleteVolume', async () => {
    m.ec2.on(DescribeVolumesCommand).resolves({ Volumes: [volume('vol-1', 'available')] });
    m.ec2.on(DeleteVolumeCommand).rejects(awsError('InvalidVolume.NotFound'));
    expect(await removeVolume({ runId: TAGS.runId, deadline: inSeconds(30) }, testContext())).toEqual({ removed: ['vol-1'] });
  });
});

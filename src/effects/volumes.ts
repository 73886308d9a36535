// The working copy of the AMI's root disk: a volume made from its snapshot in the helper's AZ,
// attached to the helper, removed with it.
import {
  AttachVolumeCommand,
  CreateVolumeCommand,
  DeleteVolumeCommand,
  paginateDescribeVolumes,
  ModifyInstanceAttributeCommand,
  type Filter,
  type Volume,
} from '@aws-sdk/client-ec2';
import { tagList } from '../machine/names.js';
import type {
  AttachVolumeInput,
  AttachVolumeOutput,
  CreateVolumeInput,
  CreateVolumeOutput,
  RemovedOutput,
  RemoveVolumeInput,
} from '../machine/types.js';
import type { EffectContext } from './context.js';
import { hasAwsCode, unlessCode } from './errors.js';
import { carriesRunId, runIdFilter } from './tags.js';
import { allItems, pollUntil, sendOptions } from './wait.js';

const VOLUME_NOT_FOUND = 'InvalidVolume.NotFound';

export const describeVolumes = (ctx: EffectContext, query: { VolumeIds?: string[]; Filters?: Filter[] }): Promise<Volume[]> =>
  allItems(paginateDescribeVolumes({ client: ctx.clients.ec2 }, query, sendOptions(ctx)), (page) => page.Volumes);

/** One volume by id; `undefined` once it is gone (EC2 may also not know a brand-new id yet). */
async function volumeById(volumeId: string, ctx: EffectContext): Promise<Volume | undefined> {
  const volumes = await unlessCode(() => describeVolumes(ctx, { VolumeIds: [volumeId] }), VOLUME_NOT_FOUND);
  return volumes?.[0];
}

/** A volume an earlier attempt of this run created: same run id and Name, not on its way out. */
async function findRunVolume(input: CreateVolumeInput, ctx: EffectContext): Promise<Volume | undefined> {
  const volumes = await describeVolumes(ctx, {
    Filters: [
      runIdFilter(input.tags.runId),
      { Name: 'tag:Name', Values: [input.tags.name] },
      { Name: 'status', Values: ['creating', 'available', 'in-use'] },
    ],
  });
  return volumes[0];
}

async function waitUntilAvailable(volumeId: string, deadline: string, ctx: EffectContext): Promise<void> {
  await pollUntil(ctx, {
    deadline,
    timeoutMessage: () => `volume ${volumeId} was still not available at ${deadline}; EC2 may be slow to restore a large snapshot, check the volume in the EC2 console`,
  }, async () => {
    const volume = await volumeById(volumeId, ctx);
    if (volume?.State === 'error') throw new Error(`volume ${volumeId} failed to create (state error)`);
    if (volume?.State === 'deleting' || volume?.State === 'deleted') throw new Error(`volume ${volumeId} is ${volume.State} while being created`);
    return volume?.State === 'available' || volume?.State === 'in-use' ? true : undefined;
  });
}

/** Encrypted when the snapshot is: EC2 then encrypts with the snapshot's own key. */
export async function createVolume(input: CreateVolumeInput, ctx: EffectContext): Promise<CreateVolumeOutput> {
  let volumeId = (await findRunVolume(input, ctx))?.VolumeId;
  if (!volumeId) {
    const created = await ctx.clients.ec2.send(new CreateVolumeCommand({
      ClientToken: input.clientToken,
      SnapshotId: input.snapshotId,
      AvailabilityZone: input.availabilityZone,
      Size: input.sizeGiB,
      VolumeType: 'gp3',
      ...(input.encrypted ? { Encrypted: true } : {}),
      TagSpecifications: [{ ResourceType: 'volume', Tags: tagList(input.tags) }],
    }), sendOptions(ctx));
    volumeId = created.VolumeId;
    if (!volumeId) throw new Error(`CreateVolume returned no volume id for snapshot ${input.snapshotId}`);
  }
  ctx.report({ type: 'step', step: 'volume', message: `waiting for volume ${volumeId} to become available`, data: { volumeId } });
  await waitUntilAvailable(volumeId, input.deadline, ctx);
  return { volumeId };
}

const attachmentTo = (volume: Volume | undefined, instanceId: string) =>
  volume?.Attachments?.find((attachment) => attachment.InstanceId === instanceId);

/**
 * Once attached, the volume is marked DeleteOnTermination, so the dead-man switch that terminates the
 * helper removes the volume too even if nothing else ever runs again.
 */
export async function attachVolume(input: AttachVolumeInput, ctx: EffectContext): Promise<AttachVolumeOutput> {
  const { ec2 } = ctx.clients;
  const before = await volumeById(input.volumeId, ctx);
  if (!attachmentTo(before, input.instanceId)) {
    try {
      await ec2.send(new AttachVolumeCommand({ InstanceId: input.instanceId, VolumeId: input.volumeId, Device: input.device }), sendOptions(ctx));
    } catch (error) {
      // An earlier attempt's attach raced this one; the wait below tells whether it is ours.
      if (!hasAwsCode(error, 'VolumeInUse')) throw error;
    }
  }
  const device = await pollUntil(ctx, {
    deadline: input.deadline,
    timeoutMessage: () => `volume ${input.volumeId} was not attached to ${input.instanceId} by ${input.deadline}`,
  }, async () => {
    const volume = await volumeById(input.volumeId, ctx);
    const attachment = attachmentTo(volume, input.instanceId);
    if (!attachment && volume?.State === 'in-use') {
      throw new Error(`volume ${input.volumeId} is attached to another instance (${volume.Attachments?.[0]?.InstanceId})`);
    }
    return attachment?.State === 'attached' ? attachment.Device ?? input.device : undefined;
  });
  await ec2.send(new ModifyInstanceAttributeCommand({
    InstanceId: input.instanceId,
    BlockDeviceMappings: [{ DeviceName: device, Ebs: { VolumeId: input.volumeId, DeleteOnTermination: true } }],
  }), sendOptions(ctx));
  return { device };
}

/** Volumes of the run: tagged with its id, plus the checkpoint's id if it carries that tag. */
async function runVolumes(input: RemoveVolumeInput, ctx: EffectContext): Promise<Volume[]> {
  const volumes = await describeVolumes(ctx, { Filters: [runIdFilter(input.runId)] });
  if (input.volumeId && !volumes.some((v) => v.VolumeId === input.volumeId)) {
    const given = await volumeById(input.volumeId, ctx);
    if (given) volumes.push(given);
  }
  return volumes.filter((v) => v.VolumeId && carriesRunId(v.Tags, input.runId));
}

/**
 * An attached volume is left to the instance's termination, which detaches it (and, with
 * DeleteOnTermination, deletes it); then what is still there is deleted.
 */
export async function removeVolume(input: RemoveVolumeInput, ctx: EffectContext): Promise<RemovedOutput> {
  const removed: string[] = [];
  for (const { VolumeId: volumeId } of await runVolumes(input, ctx)) {
    const state = await pollUntil(ctx, {
      deadline: input.deadline,
      timeoutMessage: () => `volume ${volumeId} is still attached at ${input.deadline}; remove its instance first, then run cleanup again`,
    }, async () => {
      const volume = await volumeById(volumeId!, ctx);
      if (!volume || volume.State === 'deleting' || volume.State === 'deleted') return 'gone';
      return volume.State === 'in-use' || volume.State === 'creating' ? undefined : 'detached';
    });
    if (state === 'detached') {
      await unlessCode(() => ctx.clients.ec2.send(new DeleteVolumeCommand({ VolumeId: volumeId }), sendOptions(ctx)), VOLUME_NOT_FOUND);
    }
    removed.push(volumeId!);
  }
  return { removed };
}

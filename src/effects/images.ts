// Finding the source AMI (strictly: never guess between owners) and the helper's AMI.
import { paginateDescribeImages, type DescribeImagesCommandInput, type Image } from '@aws-sdk/client-ec2';
import { GetParameterCommand } from '@aws-sdk/client-ssm';
import type { Architecture, Plan, ResolvedAmi } from '../machine/types.js';
import type { EffectContext } from './context.js';
import { InputError, hasAwsCode } from './errors.js';
import { allItems, sendOptions } from './wait.js';

/** Current-generation general-purpose types with enough memory for tar + docker; never m4. */
const DEFAULT_INSTANCE_TYPE: Record<Architecture, string> = { x86_64: 'c7i.large', arm64: 'c7g.large' };

export const defaultInstanceType = (architecture: Architecture): string => DEFAULT_INSTANCE_TYPE[architecture];

export const helperAmiParameter = (architecture: Architecture): string =>
  `/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-${architecture}`;

const hasWildcard = (name: string) => /[*?]/.test(name);
const newestFirst = (a: Image, b: Image) => (b.CreationDate ?? '').localeCompare(a.CreationDate ?? '');
/** `/dev/xvda` and `xvda` name the same device in block device mappings. */
const deviceKey = (device: string | undefined) => (device ?? '').replace(/^\/dev\//, '');

function describeCandidate(image: Image): string {
  const owner = image.ImageOwnerAlias ? `${image.OwnerId} ${image.ImageOwnerAlias}` : image.OwnerId;
  return `${image.ImageId} (owner ${owner}, ${image.CreationDate ?? 'no creation date'})`;
}

function listCandidates(images: Image[], limit = 10): string {
  const shown = images.slice(0, limit).map(describeCandidate).join(', ');
  return images.length > limit ? `${shown} and ${images.length - limit} more` : shown;
}

const describeImages = (ctx: EffectContext, input: DescribeImagesCommandInput): Promise<Image[]> =>
  allItems(paginateDescribeImages({ client: ctx.clients.ec2 }, input, sendOptions(ctx)), (page) => page.Images);

async function imageById(id: string, owners: string[], ctx: EffectContext): Promise<Image> {
  let images: Image[];
  try {
    images = await describeImages(ctx, { ImageIds: [id], ...(owners.length ? { Owners: owners } : {}) });
  } catch (error) {
    if (!hasAwsCode(error, 'InvalidAMIID.NotFound', 'InvalidAMIID.Malformed', 'InvalidAMIID.Unavailable')) throw error;
    images = [];
  }
  const image = images[0];
  if (!image) {
    throw new InputError(`AMI ${id} was not found in region ${ctx.clients.region} or is not visible to this account; check the id and --region`);
  }
  return image;
}

/**
 * By name: several images from different owners are never chosen between silently (a public AMI
 * could impersonate a private one). Within one owner a wildcard name picks the newest.
 */
async function imageByName(name: string, owners: string[], accountId: string, ctx: EffectContext): Promise<Image> {
  const images = (await describeImages(ctx, {
    Filters: [{ Name: 'name', Values: [name] }],
    ...(owners.length ? { Owners: owners } : {}),
  })).sort(newestFirst);
  const ownerText = owners.length ? ` owned by ${owners.join(', ')}` : '';
  if (images.length === 0) {
    throw new InputError(`no AMI named '${name}'${ownerText} is visible in region ${ctx.clients.region}; check the name, --ami-owner and --region, or pass --ami-id`);
  }
  const ownerIds = new Set(images.map((image) => image.OwnerId));
  if (ownerIds.size > 1) {
    throw new InputError(`AMI name '${name}' matches ${images.length} images from different owners: ${listCandidates(images)}; pass --ami-id or --ami-owner`);
  }
  if (images.length > 1 && !hasWildcard(name)) {
    throw new InputError(`AMI name '${name}' matches ${images.length} images: ${listCandidates(images)}; pass --ami-id`);
  }
  const image = images[0];
  const trusted = image.OwnerId === accountId || image.ImageOwnerAlias === 'amazon';
  if (!owners.length && !trusted) {
    ctx.report({
      type: 'warning',
      step: 'resolve',
      message: `AMI ${image.ImageId} '${image.Name}' is owned by account ${image.OwnerId}, neither yours nor Amazon; pass --ami-owner ${image.OwnerId} to confirm you trust it`,
      data: { imageId: image.ImageId, ownerId: image.OwnerId },
    });
  }
  return image;
}

function toArchitecture(image: Image): Architecture {
  if (image.Architecture === 'x86_64' || image.Architecture === 'arm64') return image.Architecture;
  throw new InputError(`AMI ${image.ImageId} has architecture '${image.Architecture}'; only x86_64 and arm64 AMIs can be converted`);
}

/** Checks what makes an AMI convertible and extracts the root volume's snapshot. */
export function toResolvedAmi(image: Image): ResolvedAmi {
  const id = image.ImageId ?? '';
  if (image.State !== 'available') {
    throw new InputError(`AMI ${id} is in state '${image.State}'; wait until it is available or choose another AMI`);
  }
  if (image.RootDeviceType !== 'ebs') {
    throw new InputError(`AMI ${id} is backed by '${image.RootDeviceType}', not EBS; instance-store AMIs have no snapshot to convert, so choose an EBS-backed AMI`);
  }
  const root = (image.BlockDeviceMappings ?? []).find((m) => deviceKey(m.DeviceName) === deviceKey(image.RootDeviceName));
  const snapshotId = root?.Ebs?.SnapshotId;
  if (!root?.Ebs || !snapshotId) {
    throw new InputError(`AMI ${id} has no EBS snapshot mapped to its root device ${image.RootDeviceName}; choose another AMI`);
  }
  return {
    id,
    name: image.Name ?? id,
    ownerId: image.OwnerId ?? '',
    architecture: toArchitecture(image),
    creationDate: image.CreationDate ?? '',
    rootDeviceName: image.RootDeviceName ?? '',
    snapshotId,
    volumeSizeGiB: root.Ebs.VolumeSize ?? 0,
    encrypted: root.Ebs.Encrypted === true,
  };
}

export async function findSourceAmi(ami: Plan['ami'], accountId: string, ctx: EffectContext): Promise<ResolvedAmi> {
  if (ami.id) return toResolvedAmi(await imageById(ami.id, ami.owners, ctx));
  if (ami.name) return toResolvedAmi(await imageByName(ami.name, ami.owners, accountId, ctx));
  throw new InputError('no source AMI given; pass --ami-id or --ami-name');
}

/** The helper's AMI: as given, the newest by name from Amazon or this account, else latest AL2023. */
export async function findHelperAmi(helper: Plan['helperAmi'], architecture: Architecture, ctx: EffectContext): Promise<string> {
  if (helper.id) return helper.id;
  if (helper.name) {
    const images = (await describeImages(ctx, {
      Owners: ['amazon', 'self'],
      Filters: [{ Name: 'name', Values: [helper.name] }, { Name: 'state', Values: ['available'] }],
    })).sort(newestFirst);
    const image = images.find((candidate) => candidate.Architecture === architecture) ?? images[0];
    if (!image?.ImageId) {
      throw new InputError(`no available helper AMI named '${helper.name}' owned by Amazon or this account in region ${ctx.clients.region}; check --instance-ami-name or pass --instance-ami-id`);
    }
    return image.ImageId;
  }
  const answer = await ctx.clients.ssm.send(new GetParameterCommand({ Name: helperAmiParameter(architecture) }), sendOptions(ctx));
  const id = answer.Parameter?.Value;
  if (!id) throw new Error(`SSM parameter ${helperAmiParameter(architecture)} has no value`);
  return id;
}

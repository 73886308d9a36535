// The EC2 resources the twin models, the seeded network and AMIs, and how each kind is described
// on the wire (the model's member names) and filtered.
import { ec2Id } from '../ids.js';
import type { Tag } from '../tags.js';
import type { FilterFields } from './filters.js';

export type Architecture = 'x86_64' | 'arm64';
export type InstanceStateName = 'pending' | 'running' | 'shutting-down' | 'terminated' | 'stopping' | 'stopped';
export type VolumeState = 'creating' | 'available' | 'in-use' | 'deleting' | 'error';

const STATE_CODES: Record<InstanceStateName, number> = {
  pending: 0, running: 16, 'shutting-down': 32, terminated: 48, stopping: 64, stopped: 80,
};

export interface Vpc { id: string; cidr: string; isDefault: boolean; dhcpOptionsId: string; tags: Tag[] }
export interface Subnet { id: string; vpcId: string; az: string; azId: string; cidr: string; defaultForAz: boolean; nextHost: number; tags: Tag[] }
export interface SecurityGroup { id: string; name: string; description: string; vpcId: string; tags: Tag[] }
export interface Snapshot { id: string; sizeGiB: number; encrypted: boolean; /** Raw disk image the snapshot holds. */ disk?: string }

export interface Image {
  id: string;
  name: string;
  ownerId: string;
  ownerAlias?: string;
  architecture: Architecture;
  creationDate: string;
  description?: string;
  rootDeviceName: string;
  rootDeviceType: 'ebs' | 'instance-store';
  state: string;
  snapshotId?: string;
  sizeGiB: number;
  encrypted: boolean;
  extraMappings: Record<string, unknown>[];
  tags: Tag[];
}

export interface Attachment {
  instanceId: string;
  device: string;
  state: 'attaching' | 'attached' | 'detaching';
  attachTime: Date;
  deleteOnTermination: boolean;
}

export interface Volume {
  id: string;
  sizeGiB: number;
  snapshotId?: string;
  az: string;
  state: VolumeState;
  volumeType: string;
  iops?: number;
  throughput?: number;
  encrypted: boolean;
  kmsKeyId?: string;
  createTime: Date;
  tags: Tag[];
  attachment?: Attachment;
  /** The instance's root volume, made by RunInstances; it has no data of its own here. */
  root: boolean;
  /** The file that holds the volume's blocks (state dir), once made. */
  file?: string;
}

export interface Instance {
  id: string;
  reservationId: string;
  launchIndex: number;
  imageId: string;
  instanceType: string;
  architecture: Architecture;
  subnetId: string;
  vpcId: string;
  az: string;
  privateIp: string;
  securityGroupIds: string[];
  profile?: { arn: string; id: string; name: string };
  state: InstanceStateName;
  stateReason?: { Code: string; Message: string };
  stateTransitionReason: string;
  launchTime: Date;
  /** When it last reached `running` (the SSM agent registers some time after). */
  runningSince?: Date;
  clientToken?: string;
  tags: Tag[];
  userData?: Buffer;
  metadata: { httpTokens: string; httpEndpoint: string; hopLimit: number };
  shutdownBehavior: 'stop' | 'terminate';
  rootDeviceName: string;
  rootDeviceType: string;
}

export interface AmiSpec {
  name: string;
  ownerId?: string;
  architecture?: Architecture;
  creationDate?: string;
  rootDeviceName?: string;
  disk?: string;
  sizeGiB?: number;
  encrypted?: boolean;
  state?: string;
  rootDeviceType?: 'ebs' | 'instance-store';
  extraMappings?: Record<string, unknown>[];
  description?: string;
}

// ---- seed ------------------------------------------------------------------------------------

export interface Network { vpc: Vpc; subnets: Subnet[]; defaultGroup: SecurityGroup }

export function defaultNetwork(region: string): Network {
  const vpc: Vpc = { id: ec2Id('vpc'), cidr: '172.31.0.0/16', isDefault: true, dhcpOptionsId: ec2Id('dopt'), tags: [] };
  const subnets = ['a', 'b'].map((letter, i): Subnet => ({
    id: ec2Id('subnet'),
    vpcId: vpc.id,
    az: `${region}${letter}`,
    azId: `${regionCode(region)}-az${i + 1}`,
    cidr: `172.31.${i * 16}.0/20`,
    defaultForAz: true,
    nextHost: 10,
    tags: [],
  }));
  const defaultGroup: SecurityGroup = { id: ec2Id('sg'), name: 'default', description: 'default VPC security group', vpcId: vpc.id, tags: [] };
  return { vpc, subnets, defaultGroup };
}

/** `use1` for us-east-1: the prefix of AWS's zone ids. */
function regionCode(region: string): string {
  const [area, direction, number] = region.split('-');
  return `${area[0]}${area[1] ?? ''}${direction?.[0] ?? ''}${number ?? ''}`;
}

/** Amazon's own owner ids for Amazon Linux and for the ECS-optimised images. */
export const AMAZON_OWNER = '137112412989';
export const ECS_OWNER = '591542846629';

export interface HelperImage { image: Image; parameter: string }

/** Amazon Linux 2023 helper images and the public SSM parameters that point at them. */
export function helperImages(): HelperImage[] {
  const release = '2023.6.20241010.0';
  const make = (name: string, ownerId: string, architecture: Architecture, description: string): Image => ({
    id: ec2Id('ami'),
    name,
    ownerId,
    ownerAlias: 'amazon',
    architecture,
    creationDate: '2024-10-10T18:52:04.000Z',
    description,
    rootDeviceName: '/dev/xvda',
    rootDeviceType: 'ebs',
    state: 'available',
    snapshotId: ec2Id('snap'),
    sizeGiB: 8,
    encrypted: false,
    extraMappings: [],
    tags: [],
  });
  const arches: [Architecture, string][] = [['x86_64', ''], ['arm64', 'arm64/']];
  return arches.flatMap(([arch, ecsInfix]) => [
    {
      image: make(`al2023-ami-${release}-kernel-6.1-${arch}`, AMAZON_OWNER, arch, `Amazon Linux 2023 AMI ${release} ${arch} HVM kernel-6.1`),
      parameter: `/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-${arch}`,
    },
    {
      image: make(`al2023-ami-ecs-hvm-2023.0.20241010-kernel-6.1-${arch}`, ECS_OWNER, arch, `Amazon Linux AMI 2023.0.20241010 ${arch} ECS HVM EBS`),
      parameter: `/aws/service/ecs/optimized-ami/amazon-linux-2023/${ecsInfix}recommended/image_id`,
    },
  ]);
}

export function imageFromSpec(spec: AmiSpec, account: string, diskBytes: number | undefined): { image: Image; snapshot?: Snapshot } {
  const rootDeviceType = spec.rootDeviceType ?? 'ebs';
  const sizeGiB = spec.sizeGiB ?? Math.max(1, Math.ceil((diskBytes ?? 0) / 2 ** 30));
  const snapshot = rootDeviceType === 'ebs' ? { id: ec2Id('snap'), sizeGiB, encrypted: spec.encrypted ?? false, disk: spec.disk } : undefined;
  const image: Image = {
    id: ec2Id('ami'),
    name: spec.name,
    ownerId: spec.ownerId ?? account,
    architecture: spec.architecture ?? 'x86_64',
    creationDate: spec.creationDate ?? new Date().toISOString(),
    description: spec.description,
    rootDeviceName: spec.rootDeviceName ?? '/dev/xvda',
    rootDeviceType,
    state: spec.state ?? 'available',
    snapshotId: snapshot?.id,
    sizeGiB,
    encrypted: spec.encrypted ?? false,
    extraMappings: spec.extraMappings ?? [],
    tags: [],
  };
  return { image, snapshot };
}

// ---- wire shapes -----------------------------------------------------------------------------

const tagsOut = (tags: Tag[]) => (tags.length > 0 ? tags : undefined);

export function imageOutput(image: Image): Record<string, unknown> {
  const root = image.rootDeviceType === 'ebs'
    ? [{ DeviceName: image.rootDeviceName, Ebs: { DeleteOnTermination: true, SnapshotId: image.snapshotId, VolumeSize: image.sizeGiB, VolumeType: 'gp3', Encrypted: image.encrypted } }]
    : [];
  return {
    Architecture: image.architecture,
    CreationDate: image.creationDate,
    ImageId: image.id,
    ImageLocation: `${image.ownerAlias ?? image.ownerId}/${image.name}`,
    ImageType: 'machine',
    Public: image.ownerAlias === 'amazon',
    OwnerId: image.ownerId,
    PlatformDetails: 'Linux/UNIX',
    UsageOperation: 'RunInstances',
    State: image.state,
    BlockDeviceMappings: [...root, ...image.extraMappings],
    Description: image.description,
    EnaSupport: true,
    Hypervisor: 'xen',
    ImageOwnerAlias: image.ownerAlias,
    Name: image.name,
    RootDeviceName: image.rootDeviceName,
    RootDeviceType: image.rootDeviceType,
    SriovNetSupport: 'simple',
    VirtualizationType: 'hvm',
    Tags: tagsOut(image.tags),
  };
}

export function vpcOutput(vpc: Vpc, account: string): Record<string, unknown> {
  return {
    CidrBlock: vpc.cidr,
    DhcpOptionsId: vpc.dhcpOptionsId,
    State: 'available',
    VpcId: vpc.id,
    OwnerId: account,
    InstanceTenancy: 'default',
    CidrBlockAssociationSet: [{ AssociationId: `vpc-cidr-assoc-${vpc.id.slice(4)}`, CidrBlock: vpc.cidr, CidrBlockState: { State: 'associated' } }],
    IsDefault: vpc.isDefault,
    Tags: tagsOut(vpc.tags),
  };
}

export function subnetOutput(subnet: Subnet, account: string, region: string): Record<string, unknown> {
  return {
    AvailabilityZone: subnet.az,
    AvailabilityZoneId: subnet.azId,
    AvailableIpAddressCount: 4091 - (subnet.nextHost - 10),
    CidrBlock: subnet.cidr,
    DefaultForAz: subnet.defaultForAz,
    MapPublicIpOnLaunch: true,
    State: 'available',
    SubnetId: subnet.id,
    VpcId: subnet.vpcId,
    OwnerId: account,
    AssignIpv6AddressOnCreation: false,
    Ipv6CidrBlockAssociationSet: [],
    SubnetArn: `arn:aws:ec2:${region}:${account}:subnet/${subnet.id}`,
    Tags: tagsOut(subnet.tags),
  };
}

export function securityGroupOutput(group: SecurityGroup, account: string): Record<string, unknown> {
  return {
    Description: group.description,
    GroupName: group.name,
    IpPermissions: [],
    OwnerId: account,
    GroupId: group.id,
    IpPermissionsEgress: [{ IpProtocol: '-1', IpRanges: [{ CidrIp: '0.0.0.0/0' }], Ipv6Ranges: [], PrefixListIds: [], UserIdGroupPairs: [] }],
    Tags: tagsOut(group.tags),
    VpcId: group.vpcId,
  };
}

export function attachmentOutput(volume: Volume): Record<string, unknown> | undefined {
  const a = volume.attachment;
  if (!a) return undefined;
  return { AttachTime: a.attachTime, Device: a.device, InstanceId: a.instanceId, State: a.state, VolumeId: volume.id, DeleteOnTermination: a.deleteOnTermination };
}

export function volumeOutput(volume: Volume): Record<string, unknown> {
  const attachment = attachmentOutput(volume);
  return {
    Attachments: attachment ? [attachment] : [],
    AvailabilityZone: volume.az,
    CreateTime: volume.createTime,
    Encrypted: volume.encrypted,
    KmsKeyId: volume.kmsKeyId,
    Size: volume.sizeGiB,
    SnapshotId: volume.snapshotId ?? '',
    State: volume.state,
    VolumeId: volume.id,
    Iops: volume.iops,
    Tags: tagsOut(volume.tags),
    VolumeType: volume.volumeType,
    MultiAttachEnabled: false,
    Throughput: volume.throughput,
  };
}

export function instanceStateOutput(state: InstanceStateName): { Code: number; Name: string } {
  return { Code: STATE_CODES[state], Name: state };
}

export function instanceOutput(instance: Instance, volumes: Volume[], groups: SecurityGroup[]): Record<string, unknown> {
  const [a, b, c] = instance.privateIp.split('.').slice(1);
  const attached = volumes.filter((v) => v.attachment?.instanceId === instance.id);
  return {
    AmiLaunchIndex: instance.launchIndex,
    ImageId: instance.imageId,
    InstanceId: instance.id,
    InstanceType: instance.instanceType,
    LaunchTime: instance.launchTime,
    Monitoring: { State: 'disabled' },
    Placement: { AvailabilityZone: instance.az, GroupName: '', Tenancy: 'default' },
    PrivateDnsName: instance.state === 'terminated' ? '' : `ip-172-${a}-${b}-${c}.ec2.internal`,
    PrivateIpAddress: instance.state === 'terminated' ? undefined : instance.privateIp,
    ProductCodes: [],
    PublicDnsName: '',
    State: instanceStateOutput(instance.state),
    StateTransitionReason: instance.stateTransitionReason,
    SubnetId: instance.state === 'terminated' ? undefined : instance.subnetId,
    VpcId: instance.state === 'terminated' ? undefined : instance.vpcId,
    Architecture: instance.architecture,
    BlockDeviceMappings: attached.map((v) => ({
      DeviceName: v.attachment!.device,
      Ebs: { AttachTime: v.attachment!.attachTime, DeleteOnTermination: v.attachment!.deleteOnTermination, Status: v.attachment!.state, VolumeId: v.id },
    })),
    ClientToken: instance.clientToken ?? '',
    EbsOptimized: false,
    EnaSupport: true,
    Hypervisor: 'xen',
    IamInstanceProfile: instance.profile ? { Arn: instance.profile.arn, Id: instance.profile.id } : undefined,
    RootDeviceName: instance.rootDeviceName,
    RootDeviceType: instance.rootDeviceType,
    SecurityGroups: groups.map((g) => ({ GroupName: g.name, GroupId: g.id })),
    SourceDestCheck: true,
    StateReason: instance.stateReason,
    Tags: tagsOut(instance.tags),
    VirtualizationType: 'hvm',
    MetadataOptions: {
      State: 'applied',
      HttpTokens: instance.metadata.httpTokens,
      HttpPutResponseHopLimit: instance.metadata.hopLimit,
      HttpEndpoint: instance.metadata.httpEndpoint,
      HttpProtocolIpv6: 'disabled',
      InstanceMetadataTags: 'disabled',
    },
    PlatformDetails: 'Linux/UNIX',
    UsageOperation: 'RunInstances',
  };
}

// ---- filters ---------------------------------------------------------------------------------

export const imageFilters: FilterFields<Image> = {
  architecture: (i) => i.architecture,
  'creation-date': (i) => i.creationDate,
  description: (i) => i.description,
  'image-id': (i) => i.id,
  'image-type': () => 'machine',
  'is-public': (i) => i.ownerAlias === 'amazon',
  name: (i) => i.name,
  'owner-alias': (i) => i.ownerAlias,
  'owner-id': (i) => i.ownerId,
  'root-device-name': (i) => i.rootDeviceName,
  'root-device-type': (i) => i.rootDeviceType,
  state: (i) => i.state,
  'virtualization-type': () => 'hvm',
  'block-device-mapping.snapshot-id': (i) => i.snapshotId,
};

export const vpcFilters: FilterFields<Vpc> = {
  'is-default': (v) => v.isDefault,
  // EC2 also accepts the attribute's own name, which many scripts use.
  isDefault: (v) => v.isDefault,
  'vpc-id': (v) => v.id,
  state: () => 'available',
  cidr: (v) => v.cidr,
  'cidr-block-association.cidr-block': (v) => v.cidr,
  'dhcp-options-id': (v) => v.dhcpOptionsId,
};

export const subnetFilters: FilterFields<Subnet> = {
  'availability-zone': (s) => s.az,
  availabilityZone: (s) => s.az,
  'availability-zone-id': (s) => s.azId,
  'cidr-block': (s) => s.cidr,
  'default-for-az': (s) => s.defaultForAz,
  defaultForAz: (s) => s.defaultForAz,
  state: () => 'available',
  'subnet-id': (s) => s.id,
  'vpc-id': (s) => s.vpcId,
};

export const securityGroupFilters: FilterFields<SecurityGroup> = {
  description: (g) => g.description,
  'group-id': (g) => g.id,
  'group-name': (g) => g.name,
  'vpc-id': (g) => g.vpcId,
};

export const volumeFilters: FilterFields<Volume> = {
  'attachment.attach-time': (v) => v.attachment?.attachTime,
  'attachment.delete-on-termination': (v) => v.attachment?.deleteOnTermination,
  'attachment.device': (v) => v.attachment?.device,
  'attachment.instance-id': (v) => v.attachment?.instanceId,
  'attachment.status': (v) => v.attachment?.state,
  'availability-zone': (v) => v.az,
  'create-time': (v) => v.createTime,
  encrypted: (v) => v.encrypted,
  size: (v) => v.sizeGiB,
  'snapshot-id': (v) => v.snapshotId,
  status: (v) => v.state,
  'volume-id': (v) => v.id,
  'volume-type': (v) => v.volumeType,
};

export function instanceFilters(volumes: () => Volume[]): FilterFields<Instance> {
  const attached = (i: Instance) => volumes().filter((v) => v.attachment?.instanceId === i.id);
  return {
    architecture: (i) => i.architecture,
    'availability-zone': (i) => i.az,
    'block-device-mapping.device-name': (i) => attached(i).map((v) => v.attachment!.device),
    'block-device-mapping.volume-id': (i) => attached(i).map((v) => v.id),
    'client-token': (i) => i.clientToken,
    'group-id': (i) => i.securityGroupIds,
    'iam-instance-profile.arn': (i) => i.profile?.arn,
    'image-id': (i) => i.imageId,
    'instance-id': (i) => i.id,
    'instance-state-code': (i) => STATE_CODES[i.state],
    'instance-state-name': (i) => i.state,
    'instance-type': (i) => i.instanceType,
    'launch-time': (i) => i.launchTime,
    'private-ip-address': (i) => i.privateIp,
    'reservation-id': (i) => i.reservationId,
    'subnet-id': (i) => i.subnetId,
    'vpc-id': (i) => i.vpcId,
  };
}

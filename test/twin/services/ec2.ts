// EC2: images, the default network, security groups, volumes and instances, with the lifecycles
// AWS puts them through (pending → running, creating → available, attaching → attached, ...).
// Real work (copying disks, loop devices, processes) is delegated to the data plane through
// Ec2Hooks; this module decides what happens when, and answers as EC2 does.
import { createHash } from 'node:crypto';
import type { Call, Input, QueryService, TwinConfig } from '../context.js';
import { AwsError } from '../errors.js';
import { ec2Id } from '../ids.js';
import type { Clock } from '../latency.js';
import { tagsFor } from '../tags.js';
import type { IamService, InstanceProfile } from './iam.js';
import { applyFilters } from './filters.js';
import {
  attachmentOutput, defaultNetwork, imageFilters, imageOutput, instanceFilters, instanceOutput, instanceStateOutput,
  securityGroupFilters, securityGroupOutput, subnetFilters, subnetOutput, volumeFilters, volumeOutput, vpcFilters, vpcOutput,
  type Architecture, type Image, type Instance, type SecurityGroup, type Snapshot, type Subnet,
  type Volume, type Vpc,
} from './ec2-resources.js';

/** The real work behind EC2's state changes; each may take a while and may fail. */
export interface Ec2Hooks {
  /** Makes the volume's blocks: a copy of the snapshot's disk, or an empty file. */
  createVolumeData(volume: Volume, snapshot: Snapshot | undefined): Promise<void>;
  deleteVolumeData(volume: Volume): Promise<void>;
  /** Starts the instance's machinery (its namespace). */
  boot(instance: Instance): Promise<void>;
  /** The instance reached `running`: run its user data. */
  started(instance: Instance): Promise<void>;
  /** Stops everything running inside the instance. */
  halt(instance: Instance): Promise<void>;
  attach(instance: Instance, volume: Volume): Promise<void>;
  detach(instance: Instance, volume: Volume): Promise<void>;
}

interface IdempotentCall { fingerprint: string; ids: string[] }

const USER_DATA_LIMIT = 16 * 1024;
const DEVICE_NAME = /^\/dev\/(sd[a-z]|xvd[a-z]{1,2}|sd[a-z][1-9]|nvme\d+n\d+)$/;

export class Ec2Service implements QueryService {
  readonly vpcs = new Map<string, Vpc>();
  readonly subnets = new Map<string, Subnet>();
  readonly groups = new Map<string, SecurityGroup>();
  readonly images = new Map<string, Image>();
  readonly snapshots = new Map<string, Snapshot>();
  readonly volumes = new Map<string, Volume>();
  readonly instances = new Map<string, Instance>();
  private readonly instanceTokens = new Map<string, IdempotentCall>();
  private readonly volumeTokens = new Map<string, IdempotentCall>();
  /** Pending work of each resource (data plane calls), awaited before the next state change. */
  private readonly work = new Map<string, Promise<void>>();

  constructor(
    private readonly config: TwinConfig,
    private readonly clock: Clock,
    private readonly iam: IamService,
    private readonly hooks: Ec2Hooks,
  ) {
    const { vpc, subnets, defaultGroup } = defaultNetwork(config.region);
    this.vpcs.set(vpc.id, vpc);
    for (const subnet of subnets) this.subnets.set(subnet.id, subnet);
    this.groups.set(defaultGroup.id, defaultGroup);
  }

  addImage(image: Image, snapshot?: Snapshot): void {
    this.images.set(image.id, image);
    if (snapshot) this.snapshots.set(snapshot.id, snapshot);
    else if (image.snapshotId) this.snapshots.set(image.snapshotId, { id: image.snapshotId, sizeGiB: image.sizeGiB, encrypted: image.encrypted });
  }

  readonly operations = {
    DescribeImages: (input: Input, call: Call) => {
      let images = this.lookup(this.images, input.ImageIds, 'ami', 'InvalidAMIID', (ids) => `The image id '[${ids.join(',')}]' does not exist`);
      const owners: string[] = input.Owners ?? [];
      if (owners.length > 0) {
        images = images.filter((image) => owners.some((owner) =>
          owner === image.ownerId || owner === image.ownerAlias || (owner === 'self' && image.ownerId === call.caller.account)));
      }
      return { Images: applyFilters(images, input.Filters, imageFilters).map(imageOutput) };
    },

    DescribeVpcs: (input: Input) => {
      const vpcs = this.lookup(this.vpcs, input.VpcIds, 'vpc', 'InvalidVpcID', notFound('vpc ID'));
      return { Vpcs: applyFilters(vpcs, input.Filters, vpcFilters).map((vpc) => vpcOutput(vpc, this.config.account)) };
    },

    DescribeSubnets: (input: Input) => {
      const subnets = this.lookup(this.subnets, input.SubnetIds, 'subnet', 'InvalidSubnetID', notFound('subnet ID'));
      return { Subnets: applyFilters(subnets, input.Filters, subnetFilters).map((s) => subnetOutput(s, this.config.account, this.config.region)) };
    },

    CreateSecurityGroup: (input: Input, call: Call) => {
      const name = requiredParam(input, 'GroupName');
      const description = requiredParam(input, 'Description', 'GroupDescription');
      if (name.startsWith('sg-')) throw new AwsError('InvalidParameterValue', 'Group names may not be in the format sg-*.');
      const vpc = input.VpcId ? this.vpc(input.VpcId) : this.defaultVpc();
      if ([...this.groups.values()].some((g) => g.vpcId === vpc.id && g.name === name)) {
        throw new AwsError('InvalidGroup.Duplicate', `The security group '${name}' already exists for VPC '${vpc.id}'`);
      }
      const group: SecurityGroup = { id: ec2Id('sg'), name, description, vpcId: vpc.id, tags: tagsFor(input.TagSpecifications, 'security-group') };
      this.groups.set(group.id, group);
      call.record({ id: group.id, created: true, tags: group.tags });
      return { GroupId: group.id, Tags: group.tags.length > 0 ? group.tags : undefined };
    },

    DescribeSecurityGroups: (input: Input) => {
      let groups = this.lookup(this.groups, input.GroupIds, 'sg', 'InvalidGroup', (ids) => `The security group '${ids.join(', ')}' does not exist`);
      const names: string[] = input.GroupNames ?? [];
      if (names.length > 0) {
        const vpc = this.defaultVpc();
        const missing = names.filter((n) => !groups.some((g) => g.vpcId === vpc.id && g.name === n));
        if (missing.length > 0) throw new AwsError('InvalidGroup.NotFound', `The security group '${missing[0]}' does not exist in default VPC '${vpc.id}'`);
        groups = groups.filter((g) => g.vpcId === vpc.id && names.includes(g.name));
      }
      return { SecurityGroups: applyFilters(groups, input.Filters, securityGroupFilters).map((g) => securityGroupOutput(g, this.config.account)) };
    },

    DeleteSecurityGroup: (input: Input, call: Call) => {
      const group = input.GroupId
        ? this.group(input.GroupId)
        : [...this.groups.values()].find((g) => g.name === input.GroupName && g.vpcId === this.defaultVpc().id);
      if (!group) throw new AwsError('InvalidGroup.NotFound', `The security group '${input.GroupName}' does not exist in default VPC '${this.defaultVpc().id}'`);
      if (group.name === 'default') throw new AwsError('CannotDelete', `the specified group: "${group.id}" name: "default" cannot be deleted by a user`);
      if ([...this.instances.values()].some((i) => i.state !== 'terminated' && i.securityGroupIds.includes(group.id))) {
        throw new AwsError('DependencyViolation', `resource ${group.id} has a dependent object`);
      }
      this.groups.delete(group.id);
      call.record({ id: group.id });
      return {};
    },

    CreateVolume: (input: Input, call: Call) => this.createVolume(input, call),

    DescribeVolumes: (input: Input) => {
      const volumes = this.lookup(this.volumes, input.VolumeIds, 'vol', 'InvalidVolume', (ids) => `The volume '${ids.join(', ')}' does not exist.`);
      return { Volumes: applyFilters(volumes, input.Filters, volumeFilters).map(volumeOutput) };
    },

    DeleteVolume: (input: Input, call: Call) => {
      const volume = this.volume(requiredParam(input, 'VolumeId'));
      if (volume.attachment) throw new AwsError('VolumeInUse', `Volume ${volume.id} is currently attached to ${volume.attachment.instanceId}`);
      if (volume.state !== 'available' && volume.state !== 'error') {
        throw new AwsError('IncorrectState', `The volume '${volume.id}' is '${volume.state}'`);
      }
      this.removeVolume(volume);
      call.record({ id: volume.id });
      return {};
    },

    AttachVolume: (input: Input, call: Call) => {
      const volume = this.volume(requiredParam(input, 'VolumeId'));
      const instance = this.instance(requiredParam(input, 'InstanceId'));
      const device = requiredParam(input, 'Device');
      if (!DEVICE_NAME.test(device)) {
        throw new AwsError('InvalidParameterValue', `Value (${device}) for parameter device is invalid. ${device} is not a valid EBS device name.`);
      }
      if (volume.attachment) throw new AwsError('VolumeInUse', `${volume.id} is already attached to an instance`);
      if (volume.state !== 'available') throw new AwsError('IncorrectState', `The volume '${volume.id}' is not 'available'.`);
      if (instance.state !== 'running' && instance.state !== 'stopped') {
        throw new AwsError('IncorrectInstanceState', `Instance '${instance.id}' is not 'running'.`);
      }
      if (volume.az !== instance.az) {
        throw new AwsError('InvalidVolume.ZoneMismatch', `The volume '${volume.id}' is not in the same availability zone as instance '${instance.id}'`);
      }
      if (this.attachedTo(instance).some((v) => v.attachment!.device === device)) {
        throw new AwsError('InvalidParameterValue', `Invalid value '${device}' for unixDevice. Attachment point ${device} is already in use`);
      }
      volume.attachment = { instanceId: instance.id, device, state: 'attaching', attachTime: new Date(), deleteOnTermination: false };
      volume.state = 'in-use';
      this.afterWork(volume.id, 'attach', () => this.hooks.attach(instance, volume), () => {
        if (volume.attachment?.state === 'attaching') volume.attachment.state = 'attached';
      });
      call.record({ id: `${volume.id}/${instance.id}` });
      return attachmentOutput(volume);
    },

    DetachVolume: (input: Input, call: Call) => {
      const volume = this.volume(requiredParam(input, 'VolumeId'));
      const attachment = volume.attachment;
      if (!attachment || (input.InstanceId && input.InstanceId !== attachment.instanceId)) {
        throw new AwsError('IncorrectState', `Volume '${volume.id}' is in the '${volume.state}' state.`);
      }
      if (attachment.state === 'detaching') return attachmentOutput(volume);
      const instance = this.instance(attachment.instanceId);
      attachment.state = 'detaching';
      const output = attachmentOutput(volume);
      this.afterWork(volume.id, 'detach', () => this.hooks.detach(instance, volume), () => {
        volume.attachment = undefined;
        volume.state = 'available';
      });
      call.record({ id: `${volume.id}/${instance.id}` });
      return output;
    },

    RunInstances: (input: Input, call: Call) => this.runInstances(input, call),

    DescribeInstances: (input: Input) => {
      const found = this.lookup(this.instances, input.InstanceIds, 'i', 'InvalidInstanceID', (ids) =>
        ids.length === 1 ? `The instance ID '${ids[0]}' does not exist` : `The instance IDs '${ids.join(', ')}' do not exist`);
      const instances = applyFilters(found, input.Filters, instanceFilters(() => [...this.volumes.values()]));
      const reservations = new Map<string, Instance[]>();
      for (const instance of instances) reservations.set(instance.reservationId, [...(reservations.get(instance.reservationId) ?? []), instance]);
      return { Reservations: [...reservations.entries()].map(([id, members]) => this.reservationOutput(id, members)) };
    },

    TerminateInstances: (input: Input, call: Call) => {
      const instances = this.lookup(this.instances, requiredList(input, 'InstanceIds'), 'i', 'InvalidInstanceID', (ids) =>
        ids.length === 1 ? `The instance ID '${ids[0]}' does not exist` : `The instance IDs '${ids.join(', ')}' do not exist`);
      const changes = instances.map((instance) => {
        const previous = instance.state;
        this.terminate(instance, { Code: 'Client.UserInitiatedShutdown', Message: 'Client.UserInitiatedShutdown: User initiated shutdown' }, 'User initiated');
        return { InstanceId: instance.id, CurrentState: instanceStateOutput(instance.state), PreviousState: instanceStateOutput(previous) };
      });
      for (const instance of instances) call.record({ id: instance.id });
      return { TerminatingInstances: changes };
    },

    ModifyInstanceAttribute: (input: Input, call: Call) => {
      const instance = this.instance(requiredParam(input, 'InstanceId'));
      for (const mapping of input.BlockDeviceMappings ?? []) {
        const volume = this.attachedTo(instance).find((v) => v.attachment!.device === mapping.DeviceName);
        if (!volume) throw new AwsError('InvalidInstanceAttributeValue', `No device is currently mapped at ${mapping.DeviceName}`);
        if (mapping.Ebs?.DeleteOnTermination !== undefined) volume.attachment!.deleteOnTermination = mapping.Ebs.DeleteOnTermination;
      }
      const behaviour = input.InstanceInitiatedShutdownBehavior?.Value;
      if (behaviour !== undefined) {
        if (behaviour !== 'stop' && behaviour !== 'terminate') throw new AwsError('InvalidParameterValue', `Value (${behaviour}) for parameter value is invalid.`);
        instance.shutdownBehavior = behaviour;
      }
      call.record({ id: instance.id });
      return {};
    },
  };

  // ---- volumes -------------------------------------------------------------------------------

  private createVolume(input: Input, call: Call): Record<string, unknown> {
    const fingerprint = fingerprintOf(input);
    const token: string | undefined = input.ClientToken;
    const earlier = token ? this.volumeTokens.get(token) : undefined;
    if (earlier) {
      if (earlier.fingerprint !== fingerprint) throw idempotencyMismatch();
      const volume = this.volumes.get(earlier.ids[0]);
      call.record({ id: earlier.ids[0], created: false, tags: volume?.tags });
      // The volume may be gone since; EC2 then still answers with what it created.
      return volume ? volumeOutput(volume) : { VolumeId: earlier.ids[0], State: 'deleted' };
    }
    const az = requiredParam(input, 'AvailabilityZone');
    if (![...this.subnets.values()].some((s) => s.az === az)) throw new AwsError('InvalidZone.NotFound', `The zone '${az}' does not exist.`);
    const snapshot = input.SnapshotId ? this.snapshots.get(input.SnapshotId) : undefined;
    if (input.SnapshotId && !snapshot) throw new AwsError('InvalidSnapshot.NotFound', `The snapshot '${input.SnapshotId}' does not exist.`);
    if (!snapshot && input.Size === undefined) throw new AwsError('MissingParameter', 'The request must contain the parameter size or snapshotId');
    const sizeGiB: number = input.Size ?? snapshot!.sizeGiB;
    if (snapshot && sizeGiB < snapshot.sizeGiB) {
      throw new AwsError('InvalidParameterValue', `Volume of size ${sizeGiB}GB is smaller than snapshot '${snapshot.id}', expect size >= ${snapshot.sizeGiB}GB`);
    }
    const volume: Volume = {
      id: ec2Id('vol'),
      sizeGiB,
      snapshotId: snapshot?.id,
      az,
      state: 'creating',
      volumeType: input.VolumeType ?? 'gp2',
      iops: input.Iops ?? (input.VolumeType === 'gp3' ? 3000 : Math.max(100, sizeGiB * 3)),
      throughput: input.VolumeType === 'gp3' ? input.Throughput ?? 125 : undefined,
      encrypted: Boolean(input.Encrypted) || Boolean(snapshot?.encrypted),
      kmsKeyId: input.KmsKeyId ?? (input.Encrypted || snapshot?.encrypted ? `arn:aws:kms:${this.config.region}:${this.config.account}:key/aws-ebs-default` : undefined),
      createTime: new Date(),
      tags: tagsFor(input.TagSpecifications, 'volume'),
      root: false,
    };
    this.volumes.set(volume.id, volume);
    if (token) this.volumeTokens.set(token, { fingerprint, ids: [volume.id] });
    this.afterWork(volume.id, 'volumeCreate', () => this.hooks.createVolumeData(volume, snapshot), () => {
      if (volume.state === 'creating') volume.state = 'available';
    }, () => { volume.state = 'error'; });
    call.record({ id: volume.id, created: true, tags: volume.tags });
    return volumeOutput(volume);
  }

  private removeVolume(volume: Volume): void {
    this.volumes.delete(volume.id);
    const pending = this.work.get(volume.id) ?? Promise.resolve();
    this.work.set(volume.id, pending.catch(() => undefined).then(() => this.hooks.deleteVolumeData(volume)));
  }

  // ---- instances -----------------------------------------------------------------------------

  private runInstances(input: Input, call: Call): Record<string, unknown> {
    const fingerprint = fingerprintOf(input);
    const token: string | undefined = input.ClientToken;
    const earlier = token ? this.instanceTokens.get(token) : undefined;
    if (earlier) {
      if (earlier.fingerprint !== fingerprint) throw idempotencyMismatch();
      const instances = earlier.ids.map((id) => this.instances.get(id)!);
      for (const instance of instances) call.record({ id: instance.id, created: false, tags: instance.tags });
      return this.reservationOutput(instances[0].reservationId, instances);
    }
    const image = this.images.get(requiredParam(input, 'ImageId'));
    if (!image) throw new AwsError('InvalidAMIID.NotFound', `The image id '[${input.ImageId}]' does not exist`);
    if (image.state !== 'available') throw new AwsError('InvalidAMIID.Unavailable', `The image id '[${image.id}]' is not available`);
    const instanceType: string = input.InstanceType ?? 'm1.small';
    if (!/^[a-z][a-z0-9-]*\.[a-z0-9]+$/.test(instanceType)) throw new AwsError('InvalidParameterValue', `Invalid value '${instanceType}' for InstanceType.`);
    const typeArch = instanceTypeArchitecture(instanceType);
    if (typeArch !== image.architecture) {
      throw new AwsError('InvalidParameterValue', `The architecture '${typeArch}' of the specified instance type does not match the architecture '${image.architecture}' of the specified AMI. Specify an instance type and an AMI that have matching architectures, and try again. You can use 'describe-instance-types' or 'describe-images' to discover the architecture of the instance type or AMI.`);
    }
    const subnet = input.SubnetId ? this.subnet(input.SubnetId) : this.defaultSubnet(input.Placement?.AvailabilityZone);
    const groupIds: string[] = input.SecurityGroupIds?.length ? input.SecurityGroupIds : [this.defaultGroupOf(subnet.vpcId).id];
    for (const id of groupIds) {
      const group = this.group(id);
      if (group.vpcId !== subnet.vpcId) throw new AwsError('InvalidParameter', `Security group ${id} and subnet ${subnet.id} belong to different networks.`);
    }
    const profile = input.IamInstanceProfile ? this.usableProfile(input.IamInstanceProfile) : undefined;
    const userData = input.UserData ? Buffer.from(input.UserData, 'base64') : undefined;
    if (userData && userData.length > USER_DATA_LIMIT) throw new AwsError('InvalidParameterValue', `User data is limited to ${USER_DATA_LIMIT} bytes`);
    const behaviour = input.InstanceInitiatedShutdownBehavior ?? 'stop';
    if (behaviour !== 'stop' && behaviour !== 'terminate') throw new AwsError('InvalidParameterValue', `Value (${behaviour}) for parameter instanceInitiatedShutdownBehavior is invalid.`);
    const count: number = input.MaxCount ?? input.MinCount ?? 1;
    if (!(count >= 1) || (input.MinCount ?? 1) > count) throw new AwsError('InvalidParameterValue', 'MinCount must be between 1 and MaxCount.');

    const reservationId = ec2Id('r');
    const instances: Instance[] = [];
    for (let launchIndex = 0; launchIndex < count; launchIndex++) {
      const instance: Instance = {
        id: ec2Id('i'),
        reservationId,
        launchIndex,
        imageId: image.id,
        instanceType,
        architecture: image.architecture,
        subnetId: subnet.id,
        vpcId: subnet.vpcId,
        az: subnet.az,
        privateIp: nextAddress(subnet),
        securityGroupIds: groupIds,
        profile: profile ? { arn: profile.arn, id: profile.id, name: profile.name } : undefined,
        state: 'pending',
        stateTransitionReason: '',
        launchTime: new Date(),
        clientToken: token,
        tags: tagsFor(input.TagSpecifications, 'instance'),
        userData,
        metadata: {
          httpTokens: input.MetadataOptions?.HttpTokens ?? 'optional',
          httpEndpoint: input.MetadataOptions?.HttpEndpoint ?? 'enabled',
          hopLimit: input.MetadataOptions?.HttpPutResponseHopLimit ?? 1,
        },
        shutdownBehavior: behaviour,
        rootDeviceName: image.rootDeviceName,
        rootDeviceType: image.rootDeviceType,
      };
      this.instances.set(instance.id, instance);
      if (image.rootDeviceType === 'ebs') this.addRootVolume(instance, image, tagsFor(input.TagSpecifications, 'volume'));
      instances.push(instance);
      this.launch(instance);
      call.record({ id: instance.id, created: true, tags: instance.tags });
    }
    if (token) this.instanceTokens.set(token, { fingerprint, ids: instances.map((i) => i.id) });
    return this.reservationOutput(reservationId, instances);
  }

  /** The profile named by RunInstances, refused while EC2 cannot see it yet (IAM propagation). */
  private usableProfile(spec: { Name?: string; Arn?: string }): InstanceProfile {
    const profile = spec.Arn ? this.iam.profileByArn(spec.Arn) : this.iam.profiles.get(spec.Name ?? '');
    if (!profile || !this.clock.elapsed(profile.changedAt, 'profilePropagation')) {
      throw spec.Arn
        ? new AwsError('InvalidParameterValue', `Value (${spec.Arn}) for parameter iamInstanceProfile.arn is invalid. Invalid IAM Instance Profile ARN`)
        : new AwsError('InvalidParameterValue', `Value (${spec.Name}) for parameter iamInstanceProfile.name is invalid. Invalid IAM Instance Profile name`);
    }
    return profile;
  }

  private addRootVolume(instance: Instance, image: Image, tags: Volume['tags']): void {
    const volume: Volume = {
      id: ec2Id('vol'),
      sizeGiB: image.sizeGiB,
      snapshotId: image.snapshotId,
      az: instance.az,
      state: 'in-use',
      volumeType: 'gp3',
      iops: 3000,
      throughput: 125,
      encrypted: image.encrypted,
      createTime: instance.launchTime,
      tags,
      root: true,
      attachment: { instanceId: instance.id, device: image.rootDeviceName, state: 'attached', attachTime: instance.launchTime, deleteOnTermination: true },
    };
    this.volumes.set(volume.id, volume);
  }

  private launch(instance: Instance): void {
    this.afterWork(instance.id, 'instanceBoot', () => this.hooks.boot(instance), () => {
      if (instance.state !== 'pending') return;
      instance.state = 'running';
      instance.runningSince = new Date();
      // User data runs on its own: a long script must not hold up the instance's state changes.
      this.hooks.started(instance).catch((error) => console.error(`twin: ${instance.id} user data:`, error));
    }, (error) => {
      instance.stateReason = { Code: 'Server.InternalError', Message: `Server.InternalError: ${String(error)}` };
      this.terminate(instance, instance.stateReason, 'Server error');
    });
  }

  /** Called when something inside the instance runs `shutdown`. */
  instanceInitiatedShutdown(instance: Instance): void {
    if (instance.state !== 'running') return;
    const reason = { Code: 'Client.InstanceInitiatedShutdown', Message: 'Client.InstanceInitiatedShutdown: Instance initiated shutdown' };
    if (instance.shutdownBehavior === 'terminate') {
      this.terminate(instance, reason, 'Instance initiated shutdown');
      return;
    }
    instance.state = 'stopping';
    instance.stateReason = reason;
    instance.stateTransitionReason = `User initiated (${awsTimestamp()})`;
    this.afterWork(instance.id, 'stop', () => this.hooks.halt(instance), () => {
      if (instance.state === 'stopping') instance.state = 'stopped';
    });
  }

  private terminate(instance: Instance, reason: { Code: string; Message: string }, why: string): void {
    if (instance.state === 'terminated' || instance.state === 'shutting-down') return;
    instance.state = 'shutting-down';
    instance.stateReason = reason;
    instance.stateTransitionReason = `${why} (${awsTimestamp()})`;
    this.afterWork(instance.id, 'terminate', () => this.hooks.halt(instance), () => this.finishTermination(instance));
  }

  /** terminated: DeleteOnTermination volumes go, the others come back `available`. */
  private async finishTermination(instance: Instance): Promise<void> {
    for (const volume of this.attachedTo(instance)) {
      await (this.work.get(volume.id) ?? Promise.resolve()).catch(() => undefined);
      await this.hooks.detach(instance, volume).catch((error) => console.error(`twin: detach ${volume.id}:`, error));
      if (volume.attachment!.deleteOnTermination) {
        volume.attachment = undefined;
        volume.state = 'deleting';
        this.removeVolume(volume);
      } else {
        volume.attachment = undefined;
        volume.state = 'available';
      }
    }
    instance.state = 'terminated';
  }

  /**
   * Starts `task` now and applies `done` once both it and the latency have passed, so a state
   * never changes before its real work is finished nor sooner than AWS would change it.
   */
  private afterWork(
    id: string,
    latency: Parameters<Clock['after']>[0],
    task: () => Promise<void>,
    done: () => void | Promise<void>,
    failed?: (error: unknown) => void,
  ): void {
    const previous = this.work.get(id) ?? Promise.resolve();
    const started = previous.catch(() => undefined).then(task);
    const delay = new Promise<void>((resolve) => this.clock.after(latency, resolve));
    const finished = Promise.all([started, delay]).then(done, (error: unknown) => {
      console.error(`twin: ${id}:`, error);
      failed?.(error);
    });
    this.work.set(id, finished);
  }

  // ---- lookups -------------------------------------------------------------------------------

  private lookup<T>(store: Map<string, T>, ids: string[] | undefined, prefix: string, code: string, message: (missing: string[]) => string): T[] {
    if (!ids || ids.length === 0) return [...store.values()];
    const malformed = ids.find((id) => !new RegExp(`^${prefix}-[0-9a-f]{8}([0-9a-f]{9})?$`).test(id));
    if (malformed) throw new AwsError(`${code}.Malformed`, `Invalid id: "${malformed}"`);
    const missing = ids.filter((id) => !store.has(id));
    if (missing.length > 0) throw new AwsError(`${code}.NotFound`, message(missing));
    return [...new Set(ids)].map((id) => store.get(id)!);
  }

  instance(id: string): Instance {
    return this.lookup(this.instances, [id], 'i', 'InvalidInstanceID', () => `The instance ID '${id}' does not exist`)[0];
  }

  private volume(id: string): Volume {
    return this.lookup(this.volumes, [id], 'vol', 'InvalidVolume', () => `The volume '${id}' does not exist.`)[0];
  }

  private group(id: string): SecurityGroup {
    return this.lookup(this.groups, [id], 'sg', 'InvalidGroup', () => `The security group '${id}' does not exist`)[0];
  }

  private subnet(id: string): Subnet {
    return this.lookup(this.subnets, [id], 'subnet', 'InvalidSubnetID', () => `The subnet ID '${id}' does not exist`)[0];
  }

  private vpc(id: string): Vpc {
    return this.lookup(this.vpcs, [id], 'vpc', 'InvalidVpcID', () => `The vpc ID '${id}' does not exist`)[0];
  }

  private defaultSubnet(az: string | undefined): Subnet {
    const subnet = [...this.subnets.values()].find((s) => s.defaultForAz && (az === undefined || s.az === az));
    if (!subnet) throw new AwsError('InvalidParameterValue', `Invalid availability zone: [${az}]`);
    return subnet;
  }

  private defaultVpc(): Vpc {
    return [...this.vpcs.values()].find((v) => v.isDefault)!;
  }

  private defaultGroupOf(vpcId: string): SecurityGroup {
    return [...this.groups.values()].find((g) => g.vpcId === vpcId && g.name === 'default')!;
  }

  attachedTo(instance: Instance): Volume[] {
    return [...this.volumes.values()].filter((v) => v.attachment?.instanceId === instance.id);
  }

  private reservationOutput(reservationId: string, instances: Instance[]): Record<string, unknown> {
    return {
      Groups: [],
      Instances: instances.map((i) => instanceOutput(i, [...this.volumes.values()], i.securityGroupIds.map((id) => this.groups.get(id)).filter((g): g is SecurityGroup => !!g))),
      OwnerId: this.config.account,
      ReservationId: reservationId,
    };
  }
}

function notFound(what: string): (ids: string[]) => string {
  return (ids) => `The ${what} '${ids.join(', ')}' does not exist`;
}

function requiredParam(input: Input, name: string, wireName = name): string {
  const value = input[name];
  if (value === undefined || value === '') throw new AwsError('MissingParameter', `The request must contain the parameter ${wireName}`);
  return String(value);
}

function requiredList(input: Input, name: string): string[] {
  const value: string[] | undefined = input[name];
  if (!value || value.length === 0) throw new AwsError('MissingParameter', `The request must contain the parameter ${name}`);
  return value;
}

/** Graviton families carry a `g` after the generation digit (t4g, m7gd, c6gn); a1 is the first. */
export function instanceTypeArchitecture(instanceType: string): Architecture {
  const family = instanceType.split('.')[0];
  return /^(a1|[a-z]+\d+g[a-z]*)$/.test(family) ? 'arm64' : 'x86_64';
}

/** What two calls with one ClientToken must agree on: every parameter but the token and DryRun. */
function fingerprintOf(input: Input): string {
  const { ClientToken: _token, DryRun: _dryRun, ...rest } = input;
  return createHash('sha256').update(JSON.stringify(rest)).digest('hex');
}

function idempotencyMismatch(): AwsError {
  return new AwsError('IdempotentParameterMismatch', 'Arguments on this idempotent request are inconsistent with arguments used in previous request(s).');
}

function nextAddress(subnet: Subnet): string {
  const [a, b, c] = subnet.cidr.split('/')[0].split('.').map(Number);
  const host = subnet.nextHost++;
  return `${a}.${b}.${c + Math.floor(host / 256)}.${host % 256}`;
}

/** `2026-12-04 19:45:01 GMT`, as EC2 writes times into StateTransitionReason. */
function awsTimestamp(): string {
  return `${new Date().toISOString().slice(0, 19).replace('T', ' ')} GMT`;
}

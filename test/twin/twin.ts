// The twin as a whole: its services, the data plane under them, who is calling, what was done.
import { statSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import type { Caller, Outcome, ServiceName, TwinConfig } from './context.js';
import { DataPlane } from './dataplane/plane.js';
import { Faults } from './faults.js';
import { iamUniqueId } from './ids.js';
import { Clock } from './latency.js';
import type { PolicyDocument } from './policy.js';
import { Ec2Service } from './services/ec2.js';
import { helperImages, imageFromSpec, type AmiSpec, type Instance } from './services/ec2-resources.js';
import { EcrService } from './services/ecr.js';
import { IamService } from './services/iam.js';
import { S3Service } from './services/s3.js';
import { SsmService } from './services/ssm.js';
import { StsService } from './services/sts.js';
import { tagRecord } from './tags.js';

/** The IAM user every key that is not an instance's is taken to belong to. */
export const USER_NAME = 'developer';

export interface HistoryEntry {
  seq: number;
  at: string;
  service: ServiceName;
  operation: string;
  caller: string;
  /** The resource the call created or returned (one entry per resource). */
  id?: string;
  /** false when an idempotent call returned what an earlier call had created. */
  created?: boolean;
  tags?: Record<string, string>;
  /** The error code the call was answered with. */
  error?: string;
}

export class Twin {
  readonly clock: Clock;
  readonly faults = new Faults();
  policy?: PolicyDocument;
  readonly history: HistoryEntry[] = [];
  readonly plane: DataPlane;
  readonly iam: IamService;
  readonly sts = new StsService();
  readonly ec2: Ec2Service;
  readonly s3: S3Service;
  readonly ecr: EcrService;
  readonly ssm: SsmService;
  private readonly instanceKeys = new Map<string, Caller & { secretAccessKey: string }>();
  private readonly pendingShutdowns = new Map<string, () => void>();

  constructor(readonly config: TwinConfig, amis: AmiSpec[], policy?: PolicyDocument) {
    this.clock = new Clock(config.timeScale, config.latencyJitter);
    this.policy = policy;
    this.plane = new DataPlane(config, (instance) => this.instanceCredentials(instance));
    this.iam = new IamService(config.account);
    this.ec2 = new Ec2Service(config, this.clock, this.iam, this.plane);
    this.s3 = new S3Service(config);
    this.ecr = new EcrService(config);
    this.ssm = new SsmService(config, this.clock, this.ec2, this.iam, this.s3, this.plane, this.faults);
    for (const { image, parameter } of helperImages()) {
      this.ec2.addImage(image);
      this.ssm.addImageParameter(parameter, image.id);
    }
    for (const spec of amis) {
      const { image, snapshot } = imageFromSpec(spec, config.account, spec.disk ? statSync(spec.disk).size : undefined);
      this.ec2.addImage(image, snapshot);
    }
  }

  /** Who signed with this access key: an instance's role, or the twin's one user. */
  caller(accessKeyId: string): Caller {
    const instance = this.instanceKeys.get(accessKeyId);
    if (instance) {
      const { secretAccessKey: _secret, ...caller } = instance;
      return caller;
    }
    return {
      accessKeyId,
      account: this.config.account,
      arn: `arn:aws:iam::${this.config.account}:user/${USER_NAME}`,
      userId: iamUniqueId('AIDA', USER_NAME),
    };
  }

  /** Temporary credentials for the role of an instance's profile, as its metadata service would give. */
  private instanceCredentials(instance: Instance): { accessKeyId: string; secretAccessKey: string } | undefined {
    const roleName = instance.profile ? this.iam.profiles.get(instance.profile.name)?.roleName : undefined;
    const role = roleName ? this.iam.roles.get(roleName) : undefined;
    if (!role) return undefined;
    const accessKeyId = iamUniqueId('ASIA');
    const secretAccessKey = randomBytes(30).toString('base64');
    this.instanceKeys.set(accessKeyId, {
      accessKeyId,
      secretAccessKey,
      account: this.config.account,
      arn: `arn:aws:sts::${this.config.account}:assumed-role/${role.name}/${instance.id}`,
      userId: `${role.id}:${instance.id}`,
      instanceId: instance.id,
      roleName: role.name,
    });
    return { accessKeyId, secretAccessKey };
  }

  record(service: ServiceName, operation: string, caller: Caller, outcomes: Outcome[], error?: string): void {
    const base = { at: new Date().toISOString(), service, operation, caller: caller.arn };
    const entries = outcomes.length > 0 ? outcomes : [{}];
    for (const outcome of entries) {
      this.history.push({
        seq: this.history.length + 1,
        ...base,
        id: outcome.id,
        created: outcome.created,
        tags: outcome.tags ? tagRecord(outcome.tags) : undefined,
        error,
      });
    }
  }

  /** `shutdown -h +N` inside an instance: after N minutes of (scaled) time, or cancelled. */
  scheduleShutdown(instanceId: string, minutes: number, cancel: boolean): void {
    const instance = this.ec2.instance(instanceId);
    this.pendingShutdowns.get(instanceId)?.();
    this.pendingShutdowns.delete(instanceId);
    if (cancel) return;
    this.pendingShutdowns.set(instanceId, this.clock.after({ seconds: minutes * 60 }, () => {
      this.pendingShutdowns.delete(instanceId);
      this.ec2.instanceInitiatedShutdown(instance);
    }));
  }

  /** Ends everything the twin started: commands, instances, loop devices, volume files. */
  async close(): Promise<void> {
    this.clock.cancelAll();
    await this.ssm.shutdown();
    await this.plane.shutdown();
  }
}

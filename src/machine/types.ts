// The contract between the statechart and the effects: what every named actor takes and returns.
// Everything here is JSON-safe, because it is persisted in the run's checkpoint.

export type Architecture = 'x86_64' | 'arm64';
export type Compression = 'gzip' | 'zstd';

/** Normalised options of one conversion; fixed for the life of a run. */
export interface Plan {
  runId: string;
  region: string;
  profile?: string;
  ami: { id?: string; name?: string; owners: string[] };
  subnetId?: string;
  /** An existing instance profile to use; when absent the tool creates its own helper role. */
  instanceProfile?: string;
  instanceType?: string;
  helperAmi: { id?: string; name?: string };
  /** An existing ECR repository (name or URI); when absent one is named from the AMI name. */
  ecrRepository?: string;
  ssmBucket?: string;
  imageTags: string[];
  /** No --tag given: the image is also tagged with the AMI id once it is known. */
  tagWithAmiId: boolean;
  changes: string[];
  excludes: string[];
  compression: Compression;
  maxRuntimeSeconds: number;
  ssmOnlineTimeoutSeconds: number;
  keepOnFailure: boolean;
  pull: boolean;
  createdAt: string;
  /** createdAt + maxRuntime: when the dead-man switch fires and the resources may be reaped. */
  expiresAt: string;
}

export interface ResolvedAmi {
  id: string;
  name: string;
  ownerId: string;
  architecture: Architecture;
  creationDate: string;
  rootDeviceName: string;
  snapshotId: string;
  volumeSizeGiB: number;
  encrypted: boolean;
}

/** Output of the `resolve` actor: every fact the rest of the run depends on. */
export interface Resolved {
  accountId: string;
  partition: string;
  ami: ResolvedAmi;
  subnet: { id: string; vpcId: string; availabilityZone: string };
  helperAmiId: string;
  instanceType: string;
  /**
   * `create` is false when the user named an existing one: the run then never changes or removes it.
   * `uri` is known at resolve time only for an existing repository; otherwise `ensureRepository` gives it.
   */
  repository: { name: string; uri?: string; create: boolean };
  bucket?: { name: string; create: boolean };
  instanceProfile: { name: string; create: boolean };
}

/** Tags every created resource carries from its creation on. */
export interface ResourceTags {
  runId: string;
  expiresAt: string;
  /** The `Name` tag. */
  name: string;
}

// ---- actor inputs and outputs (name of the actor in `setup({ actors })` → its I/O) ----

export interface ResolveInput { plan: Plan }
export type ResolveOutput = Resolved;

export interface EnsureHelperRoleInput {
  plan: Plan;
  resolved: Resolved;
  /** Deterministic: derived from the run id, so re-running after a crash finds the same names. */
  roleName: string;
  instanceProfileName: string;
  runPolicyName: string;
}
export interface EnsureHelperRoleOutput { roleName: string; instanceProfileName: string; runPolicyName: string; roleCreated: boolean }

export interface EnsureRepositoryInput { name: string; tags: ResourceTags }
export interface EnsureRepositoryOutput { name: string; uri: string; created: boolean }

export interface EnsureBucketInput { name: string; region: string; tags: ResourceTags }
export interface EnsureBucketOutput { name: string; created: boolean }

export interface CreateSecurityGroupInput { vpcId: string; groupName: string; tags: ResourceTags }
export interface CreateSecurityGroupOutput { groupId: string }

export interface CreateVolumeInput {
  clientToken: string;
  snapshotId: string;
  availabilityZone: string;
  sizeGiB: number;
  encrypted: boolean;
  tags: ResourceTags;
  /** ISO time after which waiting for `available` gives up. */
  deadline: string;
}
export interface CreateVolumeOutput { volumeId: string }

export interface RunInstanceInput {
  clientToken: string;
  imageId: string;
  instanceType: string;
  subnetId: string;
  securityGroupId: string;
  instanceProfileName: string;
  maxRuntimeSeconds: number;
  tags: ResourceTags;
  /** Retry the instance-profile propagation error with the same token until then. */
  propagationDeadline: string;
}
export interface RunInstanceOutput { instanceId: string }

export interface WaitForInstanceInput { instanceId: string; deadline: string }
export interface WaitForInstanceOutput { instanceId: string }

export interface AttachVolumeInput { instanceId: string; volumeId: string; device: string; deadline: string }
export interface AttachVolumeOutput { device: string }

/** Everything the remote script needs; the CLI renders it into the script's environment. */
export interface ConversionSpec {
  volumeId: string;
  device: string;
  repositoryUri: string;
  tags: string[];
  architecture: Architecture;
  region: string;
  ami: { id: string; name: string; creationDate: string };
  changes: string[];
  excludes: string[];
  compression: Compression;
}

export interface SendConversionInput {
  instanceId: string;
  runId: string;
  spec: ConversionSpec;
  /** Full output goes to S3 under `ami2docker/<runId>/` when a bucket is set. */
  bucket?: string;
  executionTimeoutSeconds: number;
}
export interface SendConversionOutput { commandId: string }

export interface AwaitConversionInput { commandId: string; instanceId: string; bucket?: string; runId: string; deadline: string }
export interface ConversionResult { imageUri: string; digest: string; tags: string[] }

export interface VerifyImageInput { repositoryName: string; digest: string; tags: string[] }
export interface VerifyImageOutput { digest: string; sizeBytes?: number; pushedAt?: string }

/** `imageUri` is pinned by digest; the local image also gets the run's `tags`. */
export interface PullImageInput { imageUri: string; tags: string[]; region: string }
export interface PullImageOutput { pulled: string }

// Teardown: each tolerates a resource already gone and finds by tag what the checkpoint lacks an id for.
export interface RemoveInstanceInput { runId: string; instanceId?: string; clientToken: string; deadline: string }
export interface RemoveVolumeInput { runId: string; volumeId?: string; deadline: string }
export interface RemoveSecurityGroupInput { runId: string; groupId?: string; vpcId?: string; groupName: string; deadline: string }
export interface RemoveRunPolicyInput { roleName: string; runPolicyName: string }
export interface RemovedOutput { removed: string[] }

/** A failure as stored in context: strings only, so it survives JSON. */
export interface StepError {
  step: string;
  name: string;
  message: string;
  code?: string;
}

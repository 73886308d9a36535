// SSM: the public AMI parameters, agent registration of instances, and Run Command with
// AWS-RunShellScript executed for real inside the instance (see dataplane/commands.ts).
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { posix } from 'node:path';
import type { Call, Input, QueryService, TwinConfig } from '../context.js';
import { AwsError } from '../errors.js';
import type { Faults } from '../faults.js';
import type { Clock } from '../latency.js';
import { evaluate } from '../policy.js';
import { commandDir, outputFiles, readAll, readPrefix, startCommand, type CommandRun, type RunResult } from '../dataplane/commands.js';
import type { DataPlane } from '../dataplane/plane.js';
import type { Ec2Service } from './ec2.js';
import type { Instance } from './ec2-resources.js';
import type { IamService } from './iam.js';
import type { S3Service } from './s3.js';

const MAX_STDOUT = 24000;
const MAX_STDERR = 8000;
const DOCUMENT = 'AWS-RunShellScript';
const PLUGIN = 'aws:runShellScript';

type InvocationStatus = 'Pending' | 'InProgress' | RunResult['status'];

interface Invocation {
  instanceId: string;
  status: InvocationStatus;
  statusDetails: string;
  responseCode: number;
  /** GetCommandInvocation finds the invocation only once the agent has received it. */
  delivered: boolean;
  startedAt?: Date;
  endedAt?: Date;
  stdoutPath?: string;
  stderrPath?: string;
  run?: CommandRun;
}

interface Command {
  id: string;
  comment: string;
  parameters: Record<string, string[]>;
  requestedAt: Date;
  timeoutSeconds: number;
  executionTimeout: number;
  bucket?: string;
  prefix?: string;
  invocations: Invocation[];
}

export class SsmService implements QueryService {
  private readonly parameters = new Map<string, { value: string; modified: Date }>();
  readonly commands = new Map<string, Command>();

  constructor(
    private readonly config: TwinConfig,
    private readonly clock: Clock,
    private readonly ec2: Ec2Service,
    private readonly iam: IamService,
    private readonly s3: S3Service,
    private readonly plane: DataPlane,
    private readonly faults: Faults,
  ) {}

  /** Publishes an `aws:ec2:image` parameter such as the Amazon Linux "latest" ones. */
  addImageParameter(name: string, imageId: string): void {
    this.parameters.set(name, { value: imageId, modified: new Date() });
  }

  readonly operations = {
    GetParameter: (input: Input) => {
      const parameter = this.parameters.get(input.Name);
      if (!parameter) throw new AwsError('ParameterNotFound', `Parameter ${input.Name} not found.`);
      return {
        Parameter: {
          Name: input.Name,
          Type: 'String',
          Value: parameter.value,
          Version: 1,
          LastModifiedDate: parameter.modified,
          ARN: `arn:aws:ssm:${this.config.region}::parameter${input.Name}`,
          DataType: 'aws:ec2:image',
        },
      };
    },

    DescribeInstanceInformation: (input: Input) => {
      const wanted = instanceIdFilter(input);
      const list = [...this.ec2.instances.values()]
        .filter((i) => (!wanted || wanted.includes(i.id)) && this.everRegistered(i))
        .map((i) => this.informationOf(i));
      const statuses = (input.Filters as { Key: string; Values: string[] }[] | undefined)?.find((f) => f.Key === 'PingStatus')?.Values;
      return { InstanceInformationList: statuses ? list.filter((i) => statuses.includes(i.PingStatus)) : list };
    },

    SendCommand: (input: Input, call: Call) => this.sendCommand(input, call),

    GetCommandInvocation: (input: Input) => {
      const command = this.commands.get(input.CommandId);
      const invocation = command?.invocations.find((i) => i.instanceId === input.InstanceId);
      if (!command || !invocation || !invocation.delivered) throw new AwsError('InvocationDoesNotExist', '');
      if (input.PluginName && input.PluginName !== PLUGIN) throw new AwsError('InvalidPluginName', '');
      return this.invocationOutput(command, invocation);
    },

    ListCommands: (input: Input) => {
      if (input.CommandId && !this.commands.has(input.CommandId)) throw new AwsError('InvalidCommandId', '');
      let commands = [...this.commands.values()];
      if (input.CommandId) commands = commands.filter((c) => c.id === input.CommandId);
      if (input.InstanceId) commands = commands.filter((c) => c.invocations.some((i) => i.instanceId === input.InstanceId));
      for (const filter of (input.Filters ?? []) as { key: string; value: string }[]) commands = commands.filter(commandFilter(filter, this));
      commands.sort((a, b) => b.requestedAt.getTime() - a.requestedAt.getTime());
      return { Commands: commands.map((c) => this.commandOutput(c)) };
    },

    CancelCommand: (input: Input, call: Call) => {
      const command = this.commands.get(input.CommandId);
      if (!command) throw new AwsError('InvalidCommandId', '');
      const targets: string[] | undefined = input.InstanceIds;
      for (const invocation of command.invocations) {
        if (targets && !targets.includes(invocation.instanceId)) continue;
        void this.cancel(command, invocation);
      }
      call.record({ id: command.id });
      return {};
    },
  };

  // ---- agent registration --------------------------------------------------------------------

  /**
   * The agent registers once the instance has run long enough and its role lets it call
   * ssm:UpdateInstanceInformation (AmazonSSMManagedInstanceCore or an equivalent policy).
   */
  private online(instance: Instance): boolean {
    return instance.state === 'running' && this.everRegistered(instance);
  }

  private everRegistered(instance: Instance): boolean {
    if (this.faults.ssmNeverRegisters || !instance.runningSince) return false;
    if (!this.clock.elapsed(instance.runningSince, 'ssmRegistration')) return false;
    return this.rolePermits(instance, 'ssm:UpdateInstanceInformation');
  }

  private rolePermits(instance: Instance, action: string): boolean {
    const roleName = instance.profile ? this.iam.profiles.get(instance.profile.name)?.roleName : undefined;
    return roleName !== undefined && evaluate(this.iam.roleDocuments(roleName), action) === 'allow';
  }

  private informationOf(instance: Instance): Record<string, unknown> & { PingStatus: string } {
    const [, a, b, c] = instance.privateIp.split('.');
    const online = this.online(instance);
    return {
      InstanceId: instance.id,
      PingStatus: online ? 'Online' : 'ConnectionLost',
      LastPingDateTime: online ? new Date() : instance.runningSince,
      AgentVersion: '3.3.987.0',
      IsLatestVersion: false,
      PlatformType: 'Linux',
      PlatformName: 'Amazon Linux',
      PlatformVersion: '2023',
      ResourceType: 'EC2Instance',
      IPAddress: instance.privateIp,
      ComputerName: `ip-172-${a}-${b}-${c}.ec2.internal`,
      SourceId: instance.id,
      SourceType: 'AWS::EC2::Instance',
    };
  }

  // ---- Run Command ---------------------------------------------------------------------------

  private sendCommand(input: Input, call: Call): Record<string, unknown> {
    if (input.DocumentName !== DOCUMENT) throw new AwsError('InvalidDocument', `Document with name ${input.DocumentName} does not exist.`);
    const instanceIds: string[] = input.InstanceIds ?? [];
    if (instanceIds.length === 0) throw new AwsError('InvalidInstanceId', 'InstanceIds must be given (Targets are not supported here).');
    const notReady = instanceIds.filter((id) => {
      const instance = this.ec2.instances.get(id);
      return !instance || !this.online(instance);
    });
    if (notReady.length > 0) {
      throw new AwsError('InvalidInstanceId', `Instances [[${notReady.join(', ')}]] not in a valid state for account ${this.config.account}`);
    }
    const parameters: Record<string, string[]> = input.Parameters ?? {};
    const commands = parameters.commands;
    if (!commands || commands.length === 0) throw new AwsError('InvalidParameters', 'Parameter "commands" is required.');
    const executionTimeout = Number(parameters.executionTimeout?.[0] ?? 3600);
    if (!Number.isInteger(executionTimeout) || executionTimeout < 1 || executionTimeout > 172800) {
      throw new AwsError('InvalidParameters', `Parameter "executionTimeout" "${parameters.executionTimeout?.[0]}" is not valid.`);
    }
    const command: Command = {
      id: randomUUID(),
      comment: input.Comment ?? '',
      parameters,
      requestedAt: new Date(),
      timeoutSeconds: input.TimeoutSeconds ?? 3600,
      executionTimeout,
      bucket: input.OutputS3BucketName || undefined,
      prefix: input.OutputS3KeyPrefix || undefined,
      invocations: instanceIds.map((instanceId) => ({ instanceId, status: 'Pending', statusDetails: 'Pending', responseCode: -1, delivered: false })),
    };
    this.commands.set(command.id, command);
    for (const invocation of command.invocations) this.deliver(command, invocation, commands);
    call.record({ id: command.id, created: true });
    return { Command: this.commandOutput(command) };
  }

  private deliver(command: Command, invocation: Invocation, commands: string[]): void {
    this.clock.after('commandDelivery', () => {
      invocation.delivered = true;
      this.clock.after('commandStart', () => this.start(command, invocation, commands));
    });
  }

  private start(command: Command, invocation: Invocation, commands: string[]): void {
    if (invocation.status !== 'Pending') return;
    const instance = this.ec2.instances.get(invocation.instanceId);
    invocation.startedAt = new Date();
    if (!instance || instance.state !== 'running') {
      this.finish(command, invocation, { status: 'Failed', exitCode: -1 }, 'Undeliverable');
      return;
    }
    const failure = this.faults.takeCommandFailure();
    if (failure) {
      const files = outputFiles(commandDir(this.plane, instance.id, command.id));
      writeFileSync(files.stderrPath, failure.stderr);
      Object.assign(invocation, files);
      this.finish(command, invocation, { status: 'Failed', exitCode: failure.exitCode });
      return;
    }
    const run = startCommand(this.plane, instance.id, command.id, commands, command.executionTimeout);
    Object.assign(invocation, { run, stdoutPath: run.stdoutPath, stderrPath: run.stderrPath, status: 'InProgress', statusDetails: 'InProgress' });
    void run.done.then((result) => this.finish(command, invocation, result));
  }

  private finish(command: Command, invocation: Invocation, result: RunResult, details?: string): void {
    invocation.status = result.status;
    invocation.statusDetails = details ?? (result.status === 'TimedOut' ? 'ExecutionTimedOut' : result.status);
    invocation.responseCode = result.exitCode;
    invocation.endedAt = new Date();
    invocation.run = undefined;
    this.uploadOutput(command, invocation);
  }

  private async cancel(command: Command, invocation: Invocation): Promise<void> {
    if (invocation.run) {
      await invocation.run.cancel();
      return;
    }
    if (invocation.status === 'Pending') this.finish(command, invocation, { status: 'Cancelled', exitCode: -1 });
  }

  /**
   * The agent uploads full output with the instance's role, under
   * `<prefix>/<commandId>/<instanceId>/awsrunShellScript/0.awsrunShellScript/{stdout,stderr}`
   * (joined like Go's path.Join); without s3:PutObject on the role nothing is uploaded.
   */
  private uploadOutput(command: Command, invocation: Invocation): void {
    if (!command.bucket || !invocation.stdoutPath) return;
    const instance = this.ec2.instances.get(invocation.instanceId);
    if (!instance || !this.rolePermits(instance, 's3:PutObject')) return;
    for (const [stream, path] of [['stdout', invocation.stdoutPath], ['stderr', invocation.stderrPath!]]) {
      const content = readAll(path);
      if (content.length > 0) this.s3.putObject(command.bucket, outputKey(command, invocation, stream), content);
    }
  }

  private invocationOutput(command: Command, invocation: Invocation): Record<string, unknown> {
    const terminal = invocation.endedAt !== undefined;
    const url = (key: string) => `https://s3.${this.config.region}.amazonaws.com/${command.bucket}/${key}`;
    return {
      CommandId: command.id,
      InstanceId: invocation.instanceId,
      Comment: command.comment,
      DocumentName: DOCUMENT,
      DocumentVersion: '$DEFAULT',
      PluginName: PLUGIN,
      ResponseCode: invocation.responseCode,
      ExecutionStartDateTime: invocation.startedAt?.toISOString() ?? '',
      ExecutionElapsedTime: invocation.startedAt ? elapsed(invocation.startedAt, invocation.endedAt ?? new Date()) : '',
      ExecutionEndDateTime: invocation.endedAt?.toISOString() ?? '',
      Status: invocation.status,
      StatusDetails: invocation.statusDetails,
      StandardOutputContent: invocation.stdoutPath ? readPrefix(invocation.stdoutPath, MAX_STDOUT) : '',
      StandardOutputUrl: terminal && command.bucket ? url(outputKey(command, invocation, 'stdout')) : '',
      StandardErrorContent: invocation.stderrPath ? readPrefix(invocation.stderrPath, MAX_STDERR) : '',
      StandardErrorUrl: terminal && command.bucket ? url(outputKey(command, invocation, 'stderr')) : '',
      CloudWatchOutputConfig: { CloudWatchLogGroupName: '', CloudWatchOutputEnabled: false },
    };
  }

  commandStatus(command: Command): string {
    const statuses = command.invocations.map((i) => i.status);
    if (statuses.some((s) => s === 'InProgress')) return 'InProgress';
    if (statuses.every((s) => s === 'Pending')) return 'Pending';
    if (statuses.some((s) => s === 'Pending')) return 'InProgress';
    if (statuses.every((s) => s === 'Success')) return 'Success';
    if (statuses.every((s) => s === 'Cancelled')) return 'Cancelled';
    if (statuses.some((s) => s === 'TimedOut')) return 'TimedOut';
    return 'Failed';
  }

  private commandOutput(command: Command): Record<string, unknown> {
    const status = this.commandStatus(command);
    const done = command.invocations.filter((i) => i.endedAt);
    return {
      CommandId: command.id,
      DocumentName: DOCUMENT,
      DocumentVersion: '$DEFAULT',
      Comment: command.comment,
      ExpiresAfter: new Date(command.requestedAt.getTime() + (command.timeoutSeconds + command.executionTimeout) * 1000),
      Parameters: command.parameters,
      InstanceIds: command.invocations.map((i) => i.instanceId),
      Targets: [],
      RequestedDateTime: command.requestedAt,
      Status: status,
      StatusDetails: status === 'TimedOut' ? 'ExecutionTimedOut' : status,
      OutputS3Region: this.config.region,
      OutputS3BucketName: command.bucket ?? '',
      OutputS3KeyPrefix: command.prefix ?? '',
      MaxConcurrency: '50',
      MaxErrors: '0',
      TargetCount: command.invocations.length,
      CompletedCount: done.length,
      ErrorCount: done.filter((i) => i.status !== 'Success').length,
      DeliveryTimedOutCount: 0,
      ServiceRole: '',
      NotificationConfig: { NotificationArn: '', NotificationEvents: [], NotificationType: '' },
      CloudWatchOutputConfig: { CloudWatchLogGroupName: '', CloudWatchOutputEnabled: false },
      TimeoutSeconds: command.timeoutSeconds,
    };
  }

  /** Stops every running command (at shutdown). */
  async shutdown(): Promise<void> {
    const runs = [...this.commands.values()].flatMap((c) => c.invocations).map((i) => i.run).filter((r): r is CommandRun => !!r);
    await Promise.allSettled(runs.map((r) => r.cancel()));
  }
}

function outputKey(command: Command, invocation: Invocation, stream: string): string {
  return posix.join(command.prefix ?? '', command.id, invocation.instanceId, 'awsrunShellScript', '0.awsrunShellScript', stream);
}

/** The instance ids asked for, from either filter style (Filters or the older InstanceInformationFilterList). */
function instanceIdFilter(input: Input): string[] | undefined {
  const filters = (input.Filters ?? []) as { Key: string; Values: string[] }[];
  const legacy = (input.InstanceInformationFilterList ?? []) as { key: string; valueSet: string[] }[];
  if (filters.length > 0 && legacy.length > 0) {
    throw new AwsError('InvalidFilter', 'Filters and InstanceInformationFilterList cannot be used together.');
  }
  for (const f of filters) {
    if (!['InstanceIds', 'PingStatus'].includes(f.Key)) throw new AwsError('InvalidFilterKey', `The filter key ${f.Key} is not supported here.`);
  }
  for (const f of legacy) {
    if (f.key !== 'InstanceIds') throw new AwsError('InvalidFilterKey', `The filter key ${f.key} is not supported here.`);
  }
  return filters.find((f) => f.Key === 'InstanceIds')?.Values ?? legacy.find((f) => f.key === 'InstanceIds')?.valueSet;
}

function commandFilter(filter: { key: string; value: string }, ssm: SsmService): (command: Command) => boolean {
  switch (filter.key) {
    case 'InvokedAfter':
      return (c) => c.requestedAt >= new Date(filter.value);
    case 'InvokedBefore':
      return (c) => c.requestedAt <= new Date(filter.value);
    case 'Status':
      return (c) => ssm.commandStatus(c) === filter.value;
    case 'ExecutionStage':
      return (c) => (filter.value === 'Executing') === ['Pending', 'InProgress'].includes(ssm.commandStatus(c));
    case 'DocumentName':
      return () => filter.value === DOCUMENT;
    default:
      throw new AwsError('InvalidFilterKey', `The filter key ${filter.key} is not valid.`);
  }
}

/** ISO 8601 duration, as SSM reports ExecutionElapsedTime (`PT1.234S`). */
function elapsed(from: Date, to: Date): string {
  return `PT${((to.getTime() - from.getTime()) / 1000).toFixed(3)}S`;
}

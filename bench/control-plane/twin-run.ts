// One measurement of the control-plane benchmark: a fresh twin holding the AMI, the inputs the
// original tool expected to exist (an instance profile, an ECR repository, an output bucket), one tool run as a child
// process, and what it did: its milestones, every AWS request it made, the conversion's own time.
import { CreateRepositoryCommand, DeleteRepositoryCommand, ECRClient } from '@aws-sdk/client-ecr';
import {
  AddRoleToInstanceProfileCommand, AttachRolePolicyCommand, CreateInstanceProfileCommand, CreateRoleCommand, IAMClient, PutRolePolicyCommand,
} from '@aws-sdk/client-iam';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { GetCommandInvocationCommand, SSMClient } from '@aws-sdk/client-ssm';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { helperTrustPolicy, runPolicyDocument, ssmManagedPolicyArn } from '../../src/effects/iam.js';
import { CLI_BIN } from '../../test/support/cli.js';
import { startTwin, type RunningTwin } from '../../test/support/twin.js';
import { LATENCY } from '../../test/twin/latency.js';
import { REPLAY_ORDERS, type ReplayOrder } from './orders.js';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

/** ami2docker, or a replay of the original tool in one of its orders (see original.ts). */
export type Tool = 'ami2docker' | ReplayOrder;
export const TOOLS: readonly Tool[] = ['ami2docker', ...REPLAY_ORDERS];

/**
 * Moments both tools pass through, in order (epoch ms). `ready`: modules loaded, first work begins;
 * `launched`: RunInstances accepted; `attached`: the helper's SSM agent is online and the volume
 * attached (in whichever order the tool waits for them), so the command can be sent.
 */
export const MILESTONES = ['ready', 'launched', 'attached', 'commandDone', 'image', 'exit'] as const;
export type Milestone = (typeof MILESTONES)[number];

export interface ApiCall { at: number; service: string; operation: string; byTool: boolean; status: number }

export interface Measurement {
  tool: Tool;
  /** Just before the child process was spawned. */
  startedAt: number;
  at: Record<Milestone, number>;
  /** Every request the twin answered between start and exit (its request log; see report.ts). */
  calls: ApiCall[];
  /** The conversion command on the helper, from SSM's ExecutionStartDateTime/EndDateTime. */
  conversion: { startedAt: number; endedAt: number };
  /** ami2docker only: the phases its checkpoint recorded, in seconds. */
  phases?: Record<string, number>;
}

export interface BenchSetup {
  disk: string;
  scale: number;
  /** How much the twin's latencies vary around their nominal values (0: exact). */
  jitter: number;
  /** Where child processes keep their state, settings and cwd (removed by the caller). */
  workDir: string;
}

export const AMI_NAME = 'bench-control-plane-al2023';
const PROFILE = 'bench-helper';
const BUCKET = 'bench-control-plane-output';
const repositoryOf = (tool: Tool) => `bench-control-plane/${tool}`;
const ORIGINAL_BIN = fileURLToPath(new URL('./original.js', import.meta.url));
const CHILD_TIMEOUT_MS = 10 * 60_000;

type Clients = ReturnType<typeof clientsFor>;

function clientsFor(twin: RunningTwin) {
  const config = {
    region: twin.env.AWS_REGION,
    endpoint: twin.url,
    credentials: { accessKeyId: twin.env.AWS_ACCESS_KEY_ID!, secretAccessKey: twin.env.AWS_SECRET_ACCESS_KEY! },
  };
  const clients = {
    iam: new IAMClient(config), ecr: new ECRClient(config), ssm: new SSMClient(config), sts: new STSClient(config),
    s3: new S3Client(config),
  };
  return { ...clients, destroy: () => Object.values(clients).forEach((client) => client.destroy()) };
}

/**
 * What the original tool took as given (--instance-profile, --ecr-registry, --ssm-bucket), made
 * before the clock starts, and given to both tools: IAM propagation, repository and bucket creation
 * are in neither path. The role holds what ami2docker's own helper role would: SSM core, ECR push
 * and writing command output to the bucket (under any prefix: the two tools use different ones).
 */
async function provideInputs(clients: Clients, twin: RunningTwin, tool: Tool, setup: BenchSetup): Promise<void> {
  const { Account } = await clients.sts.send(new GetCallerIdentityCommand({}));
  const policy = runPolicyDocument({ partition: 'aws', region: twin.env.AWS_REGION!, accountId: Account!, repositoryName: repositoryOf(tool), runId: 'bench' });
  policy.Statement.push(
    { Sid: 'WriteCommandOutput', Effect: 'Allow', Action: 's3:PutObject', Resource: `arn:aws:s3:::${BUCKET}/*` },
    { Sid: 'LocateOutputBucket', Effect: 'Allow', Action: ['s3:GetBucketLocation', 's3:GetEncryptionConfiguration'], Resource: `arn:aws:s3:::${BUCKET}` },
  );
  await clients.iam.send(new CreateRoleCommand({ RoleName: PROFILE, AssumeRolePolicyDocument: helperTrustPolicy() }));
  await clients.iam.send(new AttachRolePolicyCommand({ RoleName: PROFILE, PolicyArn: ssmManagedPolicyArn('aws') }));
  await clients.iam.send(new PutRolePolicyCommand({ RoleName: PROFILE, PolicyName: 'push', PolicyDocument: JSON.stringify(policy) }));
  await clients.iam.send(new CreateInstanceProfileCommand({ InstanceProfileName: PROFILE }));
  await clients.iam.send(new AddRoleToInstanceProfileCommand({ InstanceProfileName: PROFILE, RoleName: PROFILE }));
  await clients.ecr.send(new CreateRepositoryCommand({ repositoryName: repositoryOf(tool) }));
  await clients.s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
  // A profile is usable by RunInstances only after IAM propagation: wait it out before timing.
  await sleep(LATENCY.profilePropagation * (1 + setup.jitter) * setup.scale * 1000 + 250);
}

interface ChildRun { code: number | null; stderr: string; exitedAt: number }

const running = new Set<ChildProcess>();

/** Asks the tools under way to stop (ami2docker then tears down); their measurement then fails. */
export function stopTools(): void {
  for (const child of running) child.kill('SIGTERM');
}

/** Runs a node script, handing each JSON line of its stdout (with its own `at`) to `onEvent`. */
function runNode(args: string[], env: NodeJS.ProcessEnv, cwd: string, onEvent: (event: Record<string, unknown>) => void): Promise<ChildRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    running.add(child);
    let pending = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      pending += chunk.toString('utf8');
      const lines = pending.split('\n');
      pending = lines.pop()!;
      for (const line of lines) if (line.startsWith('{')) onEvent(JSON.parse(line) as Record<string, unknown>);
    });
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    const timer = setTimeout(() => child.kill('SIGKILL'), CHILD_TIMEOUT_MS);
    child.on('error', reject);
    child.on('close', (code) => {
      running.delete(child);
      clearTimeout(timer);
      resolve({ code, stderr, exitedAt: Date.now() });
    });
  });
}

/** Names of ami2docker's states that mark the same moments as the original's marks. */
function ami2dockerMilestone(state: string): Milestone | undefined {
  if (state === 'working.resolving') return 'ready';
  if (state.startsWith('working.converting')) return 'attached';
  if (state === 'working.verifying') return 'commandDone';
  if (state.startsWith('teardown')) return 'image';
  return undefined;
}

function childEnv(twin: RunningTwin, setup: BenchSetup): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    HOME: setup.workDir,
    // No user settings, shared AWS config or profile of this machine may reach the tools.
    XDG_CONFIG_HOME: join(setup.workDir, 'config'),
    AWS_CONFIG_FILE: '/dev/null',
    AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
    ...twin.env,
  };
}

interface ToolRun { startedAt: number; marks: Partial<Record<Milestone, number>>; child: ChildRun; runId?: string }

async function runAmi2docker(twin: RunningTwin, setup: BenchSetup, stateDir: string): Promise<ToolRun> {
  const marks: Partial<Record<Milestone, number>> = {};
  let runId: string | undefined;
  let status: unknown;
  const args = [
    CLI_BIN, '--ami-name', AMI_NAME, '--instance-profile', PROFILE, '--ecr-registry', repositoryOf('ami2docker'), '--ssm-bucket', BUCKET,
    '--json', '--state-dir', stateDir,
  ];
  const env = { ...childEnv(twin, setup), AMI2DOCKER_POLL_INTERVAL: String(2 * setup.scale) };
  const startedAt = Date.now();
  const child = await runNode(args, env, setup.workDir, (event) => {
    if (event.type === 'result') status = event.status;
    if (event.type !== 'state') return;
    runId ??= event.runId as string;
    const milestone = ami2dockerMilestone(event.state as string);
    if (milestone && marks[milestone] === undefined) marks[milestone] = Date.parse(event.at as string);
  });
  if (child.code !== 0 || status !== 'done') throw new Error(`ami2docker exited ${child.code} (${String(status)}): ${child.stderr}`);
  return { startedAt, marks, child, runId };
}

async function runReplay(twin: RunningTwin, setup: BenchSetup, order: ReplayOrder): Promise<ToolRun> {
  const marks: Partial<Record<Milestone, number>> = {};
  const args = [
    ORIGINAL_BIN, '--order', order, '--ami-name', AMI_NAME, '--instance-profile', PROFILE, '--ecr-registry', repositoryOf(order), '--ssm-bucket', BUCKET,
    '--volume-poll', String(5 * setup.scale), '--instance-poll', String(10 * setup.scale),
  ];
  const startedAt = Date.now();
  const child = await runNode(args, childEnv(twin, setup), setup.workDir, (event) => {
    if (event.type === 'mark') marks[event.name as Milestone] = Date.parse(event.at as string);
  });
  if (child.code !== 0) throw new Error(`the ${order} replay exited ${child.code}: ${child.stderr}`);
  return { startedAt, marks, child };
}

/** The twin's request log: `ISO service Operation callerArn status [error]`, one line per request. */
async function requestLog(twin: RunningTwin, from: number, to: number): Promise<ApiCall[]> {
  // The twin appends each line after answering; give the last ones a moment to land.
  await sleep(200);
  const text = await readFile(join(twin.stateDir, 'requests.log'), 'utf8');
  return text.split('\n').filter(Boolean).map((line) => {
    const [at, service, operation, caller, status] = line.split(' ');
    return { at: Date.parse(at!), service: service!, operation: operation!, byTool: caller!.endsWith(':user/developer'), status: Number(status) };
  }).filter((call) => call.at >= from && call.at <= to);
}

/** The conversion's own duration, as SSM reports it (the command started and ended on the helper). */
async function conversionSpan(clients: Clients, twin: RunningTwin): Promise<Measurement['conversion']> {
  const [command] = (await twin.control.resources()).commands;
  if (!command) throw new Error('the twin ran no command');
  const invocation = await clients.ssm.send(new GetCommandInvocationCommand({ CommandId: command.id, InstanceId: command.instanceIds[0] }));
  return { startedAt: Date.parse(invocation.ExecutionStartDateTime!), endedAt: Date.parse(invocation.ExecutionEndDateTime!) };
}

async function checkpointPhases(stateDir: string): Promise<Record<string, number> | undefined> {
  const files = (await readdir(join(stateDir, 'runs')).catch(() => [])).filter((f) => f.endsWith('.json'));
  if (files.length !== 1) return undefined;
  const checkpoint = JSON.parse(await readFile(join(stateDir, 'runs', files[0]!), 'utf8')) as { context: { phases: Record<string, { startedAt: string; endedAt?: string }> } };
  return Object.fromEntries(Object.entries(checkpoint.context.phases)
    .filter(([, span]) => span.endedAt)
    .map(([phase, span]) => [phase, (Date.parse(span.endedAt!) - Date.parse(span.startedAt)) / 1000]));
}

/** One tool, one conversion, one fresh twin; the twin and the run's files are gone afterwards. */
export async function measure(tool: Tool, setup: BenchSetup): Promise<Measurement> {
  const twin = await startTwin({ amis: [{ name: AMI_NAME, disk: setup.disk }], timeScale: setup.scale, latencyJitter: setup.jitter });
  const clients = clientsFor(twin);
  const stateDir = await mkdtemp(join(setup.workDir, `${tool}-state-`));
  try {
    await provideInputs(clients, twin, tool, setup);
    const run = tool === 'ami2docker' ? await runAmi2docker(twin, setup, stateDir) : await runReplay(twin, setup, tool);
    const calls = await requestLog(twin, run.startedAt, run.child.exitedAt);
    const launch = calls.find((call) => call.byTool && call.operation === 'RunInstances' && call.status === 200);
    const at = { ...run.marks, launched: launch?.at, exit: run.child.exitedAt };
    const missing = MILESTONES.filter((name) => at[name] === undefined);
    if (missing.length > 0) throw new Error(`${tool}: no time for ${missing.join(', ')}`);
    return {
      tool,
      startedAt: run.startedAt,
      at: at as Record<Milestone, number>,
      calls,
      conversion: await conversionSpan(clients, twin),
      ...(tool === 'ami2docker' ? { phases: await checkpointPhases(stateDir) } : {}),
    };
  } catch (error) {
    throw new Error(`${tool} measurement failed: ${(error as Error).message}\ntwin log:\n${twin.logs().slice(-2000)}`);
  } finally {
    // The registry outlives the twin: take this run's images (and any earlier run's) out of it.
    await clients.ecr.send(new DeleteRepositoryCommand({ repositoryName: repositoryOf(tool), force: true })).catch(() => undefined);
    clients.destroy();
    await twin.stop();
    await rm(stateDir, { recursive: true, force: true });
  }
}

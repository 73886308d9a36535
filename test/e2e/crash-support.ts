// What the crash suites share on top of test/support/e2e.ts: a twin with one small AMI, kill points
// taken from a clean run's checkpoint history, waiting out the lock of a killed process, what one
// run left behind or created twice, the image a run pushed, an audit of every checkpoint version
// written, and the kill-then-resume/cleanup matrix with its printed table.
import { afterAll, beforeAll, expect } from '@jest/globals';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, watch, type FSWatcher } from 'node:fs';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { CheckpointStore, type HistoryEntry as CheckpointHistoryEntry } from '../../src/effects/checkpoint.js';
import { runPolicyName, securityGroupName, TAG_RUN_ID } from '../../src/machine/names.js';
import {
  amiSpec,
  cliSandbox,
  creationsByRun,
  expectNoDuplicateCreations,
  expectNoTemporaryLeftovers,
  readCheckpoint,
  REGISTRY,
  registryPassword,
  requireServices,
  spawnCli,
  temporaryLeftovers,
  type Checkpoint,
  type CliExit,
  type CliProcess,
  type CliSandbox,
  type SpawnOptions,
} from '../support/e2e.js';
import { startTwin, type HistoryEntry, type RunningTwin, type TwinResources } from '../support/twin.js';

/**
 * AWS latencies run this many times as fast. Small enough for a long matrix, large enough that the
 * default 60-minute dead-man switch (then 108 s) never fires while a killed run waits for resume.
 */
export const CRASH_TIME_SCALE = Number(process.env.AMI2DOCKER_CRASH_TIME_SCALE ?? 0.03);
/** One small disk for every crash suite (built once per jest process by e2e.ts). */
export const CRASH_LAYOUT = 'gpt-xfs-al2023';

export const seconds = (ms: number) => `${(ms / 1000).toFixed(1)}s`;

// ---- one twin, one AMI, a sandbox per run ----------------------------------------------------------

export interface CrashEnv {
  twin: RunningTwin;
  amiName: string;
  audit: CheckpointAudit;
  /** A fresh home and state directory whose checkpoints the audit reads; removed by dispose(). */
  sandbox(): Promise<CliSandbox>;
  /** spawnCli, remembered so dispose() can stop whatever a failed test left running. */
  spawn(args: string[], sandbox: CliSandbox, options?: SpawnOptions): CliProcess;
  run(args: string[], sandbox: CliSandbox, options?: SpawnOptions): Promise<CliExit>;
  dispose(): Promise<void>;
}

/**
 * A twin holding one AMI named `amiName`. Every run gets its own state directory: e2e.ts reads
 * "the newest checkpoint" of a directory until it knows the run id, which must not be another run's.
 */
export async function crashEnv(amiName: string, options: { timeScale?: number; account?: string } = {}): Promise<CrashEnv> {
  const twin = await startTwin({
    amis: [await amiSpec(amiName, CRASH_LAYOUT)],
    timeScale: options.timeScale ?? CRASH_TIME_SCALE,
    ...(options.account ? { account: options.account } : {}),
  });
  const sandboxes: CliSandbox[] = [];
  const processes = new Set<CliProcess>();
  let audit: CheckpointAudit;
  try {
    audit = new CheckpointAudit([twin.env.AWS_SECRET_ACCESS_KEY!, await registryPassword(twin)]);
  } catch (error) {
    await twin.stop();
    throw error;
  }
  const spawn = (args: string[], sandbox: CliSandbox, spawnOptions: SpawnOptions = {}) => {
    const child = spawnCli(args, sandbox, spawnOptions);
    processes.add(child);
    void child.exited.finally(() => processes.delete(child));
    return child;
  };
  return {
    twin,
    amiName,
    audit,
    sandbox: async () => {
      const sandbox = await cliSandbox(twin);
      sandboxes.push(sandbox);
      audit.watch(sandbox.stateDir);
      return sandbox;
    },
    spawn,
    run: (args, sandbox, spawnOptions) => spawn(args, sandbox, spawnOptions).exited,
    dispose: async () => {
      for (const child of processes) child.kill('SIGKILL');
      await Promise.all([...processes].map((child) => child.exited.catch(() => undefined)));
      audit.close();
      await Promise.all(sandboxes.map((sandbox) => sandbox.dispose()));
      await twin.stop();
    },
  };
}

/** A crash env for the enclosing `describe`: started before its tests, disposed after them. */
export function useCrashEnv(amiName: string, options: Parameters<typeof crashEnv>[1] = {}): () => CrashEnv {
  let env: CrashEnv | undefined;
  beforeAll(async () => {
    await requireServices();
    env = await crashEnv(amiName, options);
  }, 300_000);
  afterAll(async () => {
    await env?.dispose();
  }, 120_000);
  return () => {
    if (!env) throw new Error(`the crash env ${amiName} did not start`);
    return env;
  };
}

/** The arguments of a conversion of the env's AMI; a tag per run keeps runs from re-tagging each other's image. */
export const convertArgs = (env: CrashEnv, tag: string, extra: string[] = []) => ['--ami-name', env.amiName, '--tag', tag, '--json', ...extra];

/** The last NDJSON `result` or `error` event of a --json run, or the raw tail of its output. */
export function outcomeOf(exit: CliExit): { exitCode: number | null; message: string; event?: Record<string, unknown> } {
  const events = exit.stdout.split('\n').filter((line) => line.startsWith('{')).map((line) => {
    try {
      return JSON.parse(line) as Record<string, unknown>;
    } catch {
      return {};
    }
  });
  const last = events.reverse().find((e) => e.type === 'result' || e.type === 'error');
  const message = typeof last?.message === 'string' ? last.message : `${exit.stdout}${exit.stderr}`.trim().split('\n').slice(-3).join(' | ');
  return { exitCode: exit.code, message, ...(last ? { event: last } : {}) };
}

// ---- kill points -----------------------------------------------------------------------------------

export interface KillPoint {
  label: string;
  /** True from the first checkpoint that shows the point reached (and in every later one). */
  reached(checkpoint: Checkpoint): boolean;
}

/** Whether the run has been in `state` (its history only grows, so this stays true once it is). */
export const passed = (checkpoint: Checkpoint, state: string) => checkpoint.history.some((entry) => entry.state === state);

/**
 * Where a kill leaves something to resolve inside the parallel provisioning state, which the history
 * shows as one entry: a paid resource recorded, or its create requested but not yet answered.
 */
const PROVISIONING_POINTS: KillPoint[] = [
  { label: 'provisioning: volume id recorded', reached: (c) => Boolean(c.context.resources.volumeId) },
  { label: 'provisioning: instance launch requested', reached: (c) => Boolean(c.context.intents.instance) },
  { label: 'provisioning: instance id recorded', reached: (c) => Boolean(c.context.resources.instanceId) },
];

/** A kill point after each state of a clean run's history, the provisioning ones after `working.provisioning`. */
export function killPointsOf(history: CheckpointHistoryEntry[]): KillPoint[] {
  return history.flatMap(({ state }) => [
    { label: state, reached: (c: Checkpoint) => passed(c, state) },
    ...(state === 'working.provisioning' ? PROVISIONING_POINTS : []),
  ]);
}

/** The state a checkpoint shows, with what it has recorded while provisioning. */
export function describeCheckpoint(checkpoint: Checkpoint | undefined): string {
  if (!checkpoint) return '(no checkpoint)';
  const state = checkpoint.final ?? checkpoint.state;
  if (state !== 'working.provisioning') return state;
  const { resources, intents } = checkpoint.context;
  const recorded = [
    resources.securityGroupId && 'sg',
    resources.volumeId && 'vol',
    resources.instanceId ? 'i' : intents.instance && 'i?',
  ].filter(Boolean);
  return `${state} [${recorded.join(',')}]`;
}

// ---- the lock a killed process leaves --------------------------------------------------------------

/**
 * A SIGKILLed process cannot release its run's lock; the next process sees that its holder is gone.
 * Waits for that (as a user would) instead of removing the lock.
 */
export async function waitForLockRelease(stateDir: string, runId: string, timeoutMs = 30_000): Promise<number> {
  const store = new CheckpointStore(stateDir);
  const started = Date.now();
  while (store.isLocked(runId)) {
    if (Date.now() - started > timeoutMs) throw new Error(`run ${runId} was still locked after ${timeoutMs} ms`);
    await delay(200);
  }
  return Date.now() - started;
}

// ---- what one run left behind, created twice, or pushed --------------------------------------------

/** The twin's resources that belong to `runId`: tagged with it, or named after it. */
export function resourcesOfRun(all: TwinResources, runId: string): TwinResources {
  const ours = (tags: Record<string, string>) => tags[TAG_RUN_ID] === runId;
  return {
    ...all,
    instances: all.instances.filter((i) => ours(i.tags)),
    volumes: all.volumes.filter((v) => ours(v.tags)),
    securityGroups: all.securityGroups.filter((g) => ours(g.tags) || g.name === securityGroupName(runId)),
    roles: all.roles.map((r) => ({ ...r, inlinePolicies: r.inlinePolicies.filter((p) => p === runPolicyName(runId)) })),
    commands: all.commands.filter((c) => c.comment.includes(runId)),
  };
}

/** Ids of the temporary resources in `resources` (instances not terminated, volumes, security groups), sorted. */
export const temporaryIds = (resources: TwinResources) =>
  [...resources.instances.filter((i) => i.state !== 'terminated'), ...resources.volumes, ...resources.securityGroups].map((r) => r.id).sort();

/**
 * Temporary resources of `runId` still in the twin. Termination and deletion finish asynchronously,
 * so this waits up to `timeoutMs` for them to settle before calling anything a leak.
 */
export async function leftoversOfRun(twin: RunningTwin, runId: string, timeoutMs = 15_000): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const leftovers = temporaryLeftovers(resourcesOfRun(await twin.control.resources(), runId));
    if (leftovers.length === 0 || Date.now() > deadline) return leftovers;
    await delay(250);
  }
}

/** Volumes, instances, security groups and conversion commands `runId` created more than once, ever. */
export async function duplicatesOfRun(twin: RunningTwin, runId: string): Promise<string[]> {
  const created = creationsByRun(await twin.control.history()).get(runId) ?? { volumes: [], instances: [], securityGroups: [] };
  const commands = resourcesOfRun(await twin.control.resources(), runId).commands.map((c) => c.id);
  const kinds = { ...created, commands };
  return Object.entries(kinds)
    .filter(([, ids]) => ids.length > 1)
    .map(([kind, ids]) => `${ids.length} ${kind}: ${ids.join(' ')}`);
}

const MANIFEST_TYPES = [
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
];

/** The digest `repository:tag` has in the test registry, or undefined when it is not there. */
export async function registryDigest(repository: string, tag: string): Promise<string | undefined> {
  const response = await fetch(`http://${REGISTRY}/v2/${repository}/manifests/${tag}`, { method: 'HEAD', headers: { Accept: MANIFEST_TYPES.join(', ') } });
  return response.ok ? response.headers.get('docker-content-digest') ?? undefined : undefined;
}

/** Why the image a finished run recorded is not what the registry holds under its tag; undefined when it is. */
export async function imageProblem(checkpoint: Checkpoint | undefined, tag: string): Promise<string | undefined> {
  const result = checkpoint?.context.result;
  if (!result) return 'the checkpoint records no pushed image';
  const repository = result.imageUri.split('@')[0]!.slice(`${REGISTRY}/`.length);
  const digest = await registryDigest(repository, tag);
  return digest === result.digest ? undefined : `registry has ${repository}:${tag} at ${digest ?? 'nothing'}, the run recorded ${result.digest}`;
}

// ---- every checkpoint version ----------------------------------------------------------------------

/** `AWS:` in base64: how every ECR authorization token (`AWS:<password>`, encoded) begins. */
const ECR_TOKEN_MARKER = Buffer.from('AWS:').toString('base64').slice(0, 5);

/**
 * Reads every version of every checkpoint (and previous copy) written under the watched state
 * directories, as it is written, and keeps each distinct one so secrets learned later (a password
 * the CLI handed to docker) can still be looked for.
 */
export class CheckpointAudit {
  /** Distinct versions by content hash: the file name it was read from, and its text. */
  private readonly versions = new Map<string, { file: string; text: string }>();
  private readonly lastSeen = new Map<string, string>();
  private readonly stops: (() => void)[] = [];

  constructor(private readonly secrets: string[]) {}

  watch(stateDir: string): void {
    const runsDir = path.join(stateDir, 'runs');
    const read = () => this.read(runsDir);
    let watcher: FSWatcher | undefined;
    try {
      watcher = watch(runsDir, read);
    } catch {
      watcher = undefined; // not created yet: the interval covers it
    }
    const timer = setInterval(read, 20);
    this.stops.push(() => {
      read();
      watcher?.close();
      clearInterval(timer);
    });
  }

  private read(runsDir: string): void {
    let files: string[];
    try {
      files = readdirSync(runsDir).filter((f) => f.endsWith('.json') || f.endsWith('.json.prev'));
    } catch {
      return;
    }
    for (const file of files) {
      let text: string;
      try {
        text = readFileSync(path.join(runsDir, file), 'utf8');
      } catch {
        continue; // renamed away between listing and reading
      }
      const hash = createHash('sha256').update(text).digest('hex');
      if (this.lastSeen.get(file) === hash) continue;
      this.lastSeen.set(file, hash);
      if (!this.versions.has(hash)) this.versions.set(hash, { file, text });
    }
  }

  /** How many distinct checkpoint versions were read. */
  get count(): number {
    return this.versions.size;
  }

  /** Versions holding a secret (plain or base64) or anything shaped like an ECR token. */
  findings(extraSecrets: string[] = []): string[] {
    const secrets = [...this.secrets, ...extraSecrets].filter(Boolean);
    const found: string[] = [];
    for (const { file, text } of this.versions.values()) {
      for (const [index, secret] of secrets.entries()) {
        if (text.includes(secret) || text.includes(Buffer.from(secret).toString('base64'))) found.push(`${file}: secret #${index}`);
      }
      if (text.includes(ECR_TOKEN_MARKER)) found.push(`${file}: an ECR authorization token`);
    }
    return found;
  }

  close(): void {
    for (const stop of this.stops.splice(0)) stop();
  }
}

// ---- single runs -----------------------------------------------------------------------------------

export interface KilledRun {
  sandbox: CliSandbox;
  runId: string;
  /** The checkpoint the killed process left. */
  checkpoint: Checkpoint;
}

/**
 * Starts a conversion in a fresh sandbox and SIGKILLs it as soon as its checkpoint shows `state`.
 * (Fresh, because until e2e.ts knows the run id it judges the newest checkpoint of the directory,
 * which in a used one is an earlier run's.) `prepare` can set the sandbox up first.
 */
export async function killRunAt(env: CrashEnv, state: string, tag: string, options: { args?: string[]; prepare?: (sandbox: CliSandbox) => Promise<void> } = {}): Promise<KilledRun> {
  const sandbox = await env.sandbox();
  await options.prepare?.(sandbox);
  const child = env.spawn(convertArgs(env, tag, options.args), sandbox, { killOn: { checkpoint: (c) => passed(c, state) } });
  const exit = await child.exited;
  const runId = child.runId();
  const checkpoint = runId ? readCheckpoint(sandbox.stateDir, runId) : undefined;
  if (!exit.killed || !runId || !checkpoint) {
    throw new Error(`the run was not killed at ${state} (exit ${exit.code}, ${describeCheckpoint(checkpoint)}): ${outcomeOf(exit).message}`);
  }
  return { sandbox, runId, checkpoint };
}

export const checkpointPath = (sandbox: CliSandbox, runId: string) => new CheckpointStore(sandbox.stateDir).pathOf(runId);

/** Mutating calls made with the user's credentials (not an instance role's, such as a helper's conversion script). */
export const userMutations = (history: HistoryEntry[]) => history.filter((entry) => /:user\//.test(entry.caller));

// ---- a clean run -----------------------------------------------------------------------------------

/** Converts the env's AMI without interruption; the checkpoint's history gives the kill points. */
export async function cleanRun(env: CrashEnv, tag: string): Promise<{ checkpoint: Checkpoint; ms: number }> {
  const started = Date.now();
  const sandbox = await env.sandbox();
  const child = env.spawn(convertArgs(env, tag), sandbox);
  const exit = await child.exited;
  const runId = child.runId();
  const checkpoint = runId ? readCheckpoint(sandbox.stateDir, runId) : undefined;
  if (exit.code !== 0 || checkpoint?.final !== 'done') {
    throw new Error(`the clean run failed (exit ${exit.code}, ${describeCheckpoint(checkpoint)}): ${outcomeOf(exit).message}\n${env.twin.logs().slice(-2000)}`);
  }
  const problem = await imageProblem(checkpoint, tag);
  if (problem) throw new Error(`the clean run's image: ${problem}`);
  return { checkpoint, ms: Date.now() - started };
}

/** How long the run took from its first checkpoint to its last. */
export function runSpanMs(checkpoint: Checkpoint): number {
  return Date.parse(checkpoint.history.at(-1)!.at) - Date.parse(checkpoint.history[0]!.at);
}

/** `count` moments spread over `spanMs`, one at a random point of each equal slice (reproducible from `seed`). */
export function stratifiedMoments(count: number, spanMs: number, seed: number): number[] {
  let state = seed >>> 0;
  const random = () => {
    // mulberry32: small, seedable, good enough to spread kill moments.
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return Array.from({ length: count }, (_, i) => Math.round(((i + random()) / count) * spanMs));
}

// ---- the kill matrix -------------------------------------------------------------------------------

export type Then = 'resume' | 'cleanup';

export interface CrashCase {
  id: string;
  /** A kill point, or a delay after the run's first checkpoint. */
  kill: KillPoint | { afterMs: number };
  then: Then;
}

export interface CaseRow {
  id: string;
  target: string;
  killedAt: string;
  then: Then;
  outcome: string;
  leaked: string[];
  duplicated: string[];
  /** Expectations missed other than leaks and duplicates. */
  problems: string[];
  ms: number;
}

/** Runs what must not overlap (conversions, resumes: the machine has two cores) one at a time, in the order asked. */
export class Serial {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(work: () => Promise<T>): Promise<T> {
    const result = this.tail.then(work);
    this.tail = result.catch(() => undefined);
    return result;
  }
}

interface Killed {
  spec: CrashCase;
  sandbox: CliSandbox;
  tag: string;
  runId?: string;
  killedAt: string;
  problems: string[];
  started: number;
}

const targetOf = (spec: CrashCase) => ('reached' in spec.kill ? spec.kill.label : `+${seconds(spec.kill.afterMs)}`);

async function startAndKill(env: CrashEnv, spec: CrashCase): Promise<Killed> {
  const started = Date.now();
  const sandbox = await env.sandbox();
  const tag = `${spec.id.toLowerCase()}-${spec.then}`;
  const point = 'reached' in spec.kill ? spec.kill : undefined;
  const child = env.spawn(convertArgs(env, tag), sandbox, point ? { killOn: { checkpoint: point.reached } } : {});
  if (!point) {
    const { afterMs } = spec.kill as { afterMs: number };
    // Timed from the first checkpoint, so the CLI's start-up time does not shift the moment.
    void child.waitForCheckpoint(() => true).then(() => delay(afterMs)).then(() => child.kill('SIGKILL'), () => undefined);
  }
  const exit = await child.exited;
  const runId = child.runId();
  const checkpoint = runId ? readCheckpoint(sandbox.stateDir, runId) : undefined;
  const problems: string[] = [];
  if (!runId) problems.push(`no run id: ${outcomeOf(exit).message}`);
  if (!exit.killed && point && !(checkpoint && point.reached(checkpoint))) {
    problems.push(`the run ended (exit ${exit.code}) before ${point.label}: ${outcomeOf(exit).message}`);
  }
  const killedAt = exit.killed ? describeCheckpoint(checkpoint) : `ended first (${describeCheckpoint(checkpoint)})`;
  return { spec, sandbox, tag, ...(runId ? { runId } : {}), killedAt, problems, started };
}

async function resumeOrCleanUp(env: CrashEnv, killed: Killed, heavy: Serial): Promise<CaseRow> {
  const { spec, sandbox, tag, runId } = killed;
  const row: CaseRow = { id: spec.id, target: targetOf(spec), killedAt: killed.killedAt, then: spec.then, outcome: '-', leaked: [], duplicated: [], problems: [...killed.problems], ms: 0 };
  try {
    if (runId) {
      await waitForLockRelease(sandbox.stateDir, runId);
      const exit = await heavy.run(() => env.run([spec.then, runId, '--json'], sandbox));
      const checkpoint = readCheckpoint(sandbox.stateDir, runId);
      const final = checkpoint?.final ?? checkpoint?.state;
      const { exitCode, message } = outcomeOf(exit);
      row.outcome = `exit ${exitCode}, ${final}`;
      if (exitCode !== 0 || final !== (spec.then === 'resume' ? 'done' : 'cleaned')) row.problems.push(`${spec.then}: ${message}`);
      const image = spec.then === 'resume' ? await imageProblem(checkpoint, tag) : undefined;
      if (image) row.problems.push(image);
      row.leaked = await leftoversOfRun(env.twin, runId);
      row.duplicated = await duplicatesOfRun(env.twin, runId);
    }
  } catch (error) {
    row.problems.push(String((error as Error)?.message ?? error));
  }
  row.ms = Date.now() - killed.started;
  return row;
}

/**
 * Kills a run per case, then resumes or cleans it up. Kills are taken one after another; waiting
 * for a killed run's lock to be free overlaps the next kill, while the conversions and resumes
 * themselves never run two at a time. Leaks and duplicates are therefore judged per run id.
 */
export async function runMatrix(env: CrashEnv, cases: CrashCase[]): Promise<CaseRow[]> {
  const heavy = new Serial();
  const rows: Promise<CaseRow>[] = [];
  for (const spec of cases) {
    const killed = await heavy.run(() => startAndKill(env, spec));
    rows.push(resumeOrCleanUp(env, killed, heavy));
  }
  return Promise.all(rows);
}

export const failedRows = (rows: CaseRow[]) =>
  rows.filter((r) => r.problems.length || r.leaked.length || r.duplicated.length).map((r) => `${r.id} (${r.target} → ${r.then}): ${[...r.problems, ...r.leaked.map((l) => `leaked ${l}`), ...r.duplicated.map((d) => `created twice: ${d}`)].join('; ')}`);

/** No case failed, and the twin holds nothing temporary, nothing created twice; no checkpoint held a secret. */
export async function expectCleanMatrix(env: CrashEnv, rows: CaseRow[]): Promise<void> {
  expect(failedRows(rows)).toEqual([]);
  await expectNoTemporaryLeftovers(env.twin);
  await expectNoDuplicateCreations(env.twin);
  expect(env.audit.findings()).toEqual([]);
}

/** The matrix as an aligned table, with each row's problems spelled out below it. */
export function matrixTable(title: string, rows: CaseRow[]): string {
  const header = ['#', 'kill point', 'killed at (checkpoint)', 'then', 'outcome', 'leaked', 'duplicated', 'time'];
  const cells = rows.map((r) => [
    r.id, r.target, r.killedAt, r.then, `${r.outcome}${r.problems.length ? ' ✗' : ''}`,
    r.leaked.length ? String(r.leaked.length) : 'none', r.duplicated.length ? String(r.duplicated.length) : 'none', seconds(r.ms),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: string[]) => c.map((v, i) => v.padEnd(widths[i]!)).join('  ').trimEnd();
  const problems = failedRows(rows);
  return [
    title,
    line(header),
    line(widths.map((w) => '-'.repeat(w))),
    ...cells.map(line),
    ...(problems.length ? ['', 'Problems:', ...problems.map((p) => `  ${p}`)] : []),
  ].join('\n');
}

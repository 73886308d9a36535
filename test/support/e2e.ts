// Shared helpers for the end-to-end suites: the built CLI against the AWS twin, on real disk images,
// a real registry and a real Docker engine. Needs root and `scripts/services.sh start`.
//
//   const amis = [await amiSpec('sample', 'gpt-xfs-al2023')];
//   const twin = await startTwin({ amis, timeScale: 0.05 });
//   const sandbox = await cliSandbox(twin);
//   const run = spawnCli(['--ami-name', 'sample'], sandbox, { killOn: { checkpoint: (c) => c.state === 'working.attaching' } });
//   const result = await run.exited;
//   await expectNoTemporaryLeftovers(twin);
//   await sandbox.dispose(); await twin.stop();
import { expect } from '@jest/globals';
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, watch, type FSWatcher } from 'node:fs';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { processExists, type Checkpoint } from '../../src/effects/checkpoint.js';
import { makeDisk, REPO_ROOT, type Layout } from '../fixtures/disk.js';
import { CLI_BIN } from './cli.js';
import type { AmiSpec, HistoryEntry, PolicyDocument, RunningTwin, TwinResources } from './twin.js';

export type { Checkpoint };

const run = promisify(execFile);

export const REGISTRY = process.env.AMI2DOCKER_TEST_REGISTRY ?? '127.0.0.1:5000';
export const DOCKER_HOST = process.env.DOCKER_HOST ?? 'unix:///tmp/ami2docker-services/docker.sock';
export const TAG_RUN_ID = 'ami2docker:run-id';

/** `docker ARGS` against the test engine. */
export function docker(...args: string[]): Promise<{ stdout: string; stderr: string }> {
  return run('docker', args, { env: { ...process.env, DOCKER_HOST }, maxBuffer: 1 << 26 });
}

/** Fails early, with the command to run, when the registry or the engine is not up. */
export async function requireServices(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('the e2e tests need root (loop devices, mounts)');
  const ping = await fetch(`http://${REGISTRY}/v2/`).catch(() => undefined);
  if (!ping?.ok) throw new Error(`no registry at ${REGISTRY}: run scripts/services.sh start`);
  await docker('version').catch(() => {
    throw new Error(`no Docker engine at ${DOCKER_HOST}: run scripts/services.sh start`);
  });
}

// ---- disk images -------------------------------------------------------------------------------

/**
 * Disk images are built once per jest process (every test file of a --runInBand run shares them)
 * under a directory named after the process. Jest gives each test file its own `process` object,
 * so an exit hook would never fire: a detached watcher removes the directory once the process has
 * gone, and directories of processes that are gone are swept on first use.
 */
const DISK_CACHE_PREFIX = 'ami2docker-e2e-disks-';
const diskBuilds = new Map<string, Promise<string>>();

function diskCacheDir(): string {
  const dir = path.join(tmpdir(), `${DISK_CACHE_PREFIX}${process.pid}`);
  if (existsSync(dir)) return dir;
  for (const entry of readdirSync(tmpdir())) {
    const pid = Number(entry.slice(DISK_CACHE_PREFIX.length));
    if (entry.startsWith(DISK_CACHE_PREFIX) && pid > 0 && !processExists(pid)) rmSync(path.join(tmpdir(), entry), { recursive: true, force: true });
  }
  mkdirSync(dir, { recursive: true });
  const watcher = spawn('sh', ['-c', 'while kill -0 "$1" 2>/dev/null; do sleep 2; done; rm -rf -- "$2"', 'sh', String(process.pid), dir], {
    detached: true,
    stdio: 'ignore',
  });
  watcher.unref();
  return dir;
}

/** The image of `layout` (built on first use, then shared). Layouts this machine cannot build throw, saying why. */
export function diskImage(layout: Layout, size = '512M'): Promise<string> {
  const key = `${layout}-${size}`;
  let build = diskBuilds.get(key);
  if (!build) {
    build = (async () => {
      const file = path.join(diskCacheDir(), `${key}.img`);
      if (existsSync(file)) return file;
      const partial = `${file}.partial`;
      const built = await makeDisk(layout, partial, { size });
      if (!built.built) throw new Error(`cannot build the ${layout} disk here: ${built.skipped}`);
      await run('mv', [partial, file]);
      return file;
    })();
    build.catch(() => diskBuilds.delete(key));
    diskBuilds.set(key, build);
  }
  return build;
}

/** An AMI for the twin whose root snapshot is the disk image of `layout`. */
export async function amiSpec(name: string, layout: Layout, extra: Partial<AmiSpec> = {}): Promise<AmiSpec> {
  return { name, architecture: 'x86_64', creationDate: '2024-05-01T10:00:00.000Z', disk: await diskImage(layout), ...extra };
}

// ---- the CLI's environment -----------------------------------------------------------------------

export interface CliSandbox {
  /** Variables the CLI runs with, on top of a process environment stripped of AWS and ami2docker settings. */
  env: Record<string, string>;
  /** AMI2DOCKER_STATE_DIR: checkpoints are under `runs/`. */
  stateDir: string;
  /** HOME, XDG_* and the working directory: no user settings or `.ami2docker.json` leak in. */
  home: string;
  /** Directories put first on PATH. */
  pathPrefix: string[];
  dispose(): Promise<void>;
}

/** A private home, state directory and environment for CLI runs against `twin`. */
export async function cliSandbox(twin: RunningTwin, extra: Record<string, string> = {}): Promise<CliSandbox> {
  const home = await mkdtemp(path.join(tmpdir(), 'a2d-e2e-home-'));
  const stateDir = path.join(home, 'state');
  const env = {
    ...twin.env,
    AMI2DOCKER_POLL_INTERVAL: '0.1',
    AMI2DOCKER_STATE_DIR: stateDir,
    HOME: home,
    XDG_CONFIG_HOME: path.join(home, '.config'),
    XDG_STATE_HOME: path.join(home, '.local', 'state'),
    XDG_CACHE_HOME: path.join(home, '.cache'),
    DOCKER_HOST,
    AMI2DOCKER_TEST_REGISTRY: REGISTRY,
    ...extra,
  };
  return { env, stateDir, home, pathPrefix: [], dispose: () => rm(home, { recursive: true, force: true }) };
}

/** The sandboxes of one test file: made on demand, their checkpoints audited, disposed together. */
export class SandboxPool {
  private readonly made: CliSandbox[] = [];

  constructor(private readonly twin: () => RunningTwin) {}

  async make(): Promise<CliSandbox> {
    const sandbox = await cliSandbox(this.twin());
    this.made.push(sandbox);
    return sandbox;
  }

  /** expectCheckpointsKeepSecrets over every sandbox; returns how many files were checked. */
  async expectCheckpointsKeepSecrets(secrets: string[]): Promise<number> {
    let files = 0;
    for (const sandbox of this.made) files += await expectCheckpointsKeepSecrets(sandbox.stateDir, secrets);
    return files;
  }

  async dispose(): Promise<void> {
    for (const sandbox of this.made) await sandbox.dispose();
  }
}

/** The process environment without anything that would point the CLI at a real account or other settings. */
export function baseEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (value === undefined || /^(AWS_|AMI2DOCKER_|XDG_)/.test(name)) continue;
    env[name] = value;
  }
  return env;
}

// ---- running the CLI ---------------------------------------------------------------------------

export interface CliExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Whether the process was killed by `killOn` or `kill()`. */
  killed: boolean;
}

export interface KillOn {
  /** Kill as soon as stdout or stderr contains this. */
  output?: string | RegExp;
  /** Kill as soon as the run's checkpoint satisfies this (checked on every checkpoint write). */
  checkpoint?: (checkpoint: Checkpoint) => boolean;
  /** Default SIGKILL. */
  signal?: NodeJS.Signals;
}

export interface SpawnOptions {
  cwd?: string;
  /** SIGKILL after this long (default 5 minutes), so a hung run cannot hang the suite. */
  timeoutMs?: number;
  killOn?: KillOn;
  /** Extra variables for this run only. */
  env?: Record<string, string>;
  /** Run it on a pseudo-terminal (through util-linux `script`), as a person at a terminal would; see `type`. */
  terminal?: boolean;
}

export interface CliProcess {
  pid: number;
  stdout(): string;
  stderr(): string;
  /** The run id, once the CLI has printed it (human or --json output) or written a checkpoint. */
  runId(): string | undefined;
  /** Resolves once stdout or stderr contains `pattern`; rejects if the process exits first. */
  waitForOutput(pattern: string | RegExp, timeoutMs?: number): Promise<void>;
  /** Resolves with the first checkpoint that satisfies `test`; rejects if the process exits first. */
  waitForCheckpoint(test: (checkpoint: Checkpoint) => boolean, timeoutMs?: number): Promise<Checkpoint>;
  kill(signal?: NodeJS.Signals): void;
  /** Keystrokes on the terminal (`terminal` runs only): `\x03` is Ctrl-C, `\r` is Enter. */
  type(keys: string): void;
  exited: Promise<CliExit>;
}

const shellQuote = (value: string) => `'${value.replace(/'/g, `'\\''`)}'`;

const matches = (text: string, pattern: string | RegExp) => (typeof pattern === 'string' ? text.includes(pattern) : pattern.test(text));

/** The run id a CLI run printed: `run ID (checkpoint: ...)` for people, `runId` in --json events. */
export function runIdIn(output: string): string | undefined {
  return /\brun (\d{8}-\d{6}-[0-9a-f]{4}) \(checkpoint:/.exec(output)?.[1] ?? /"runId":"(\d{8}-\d{6}-[0-9a-f]{4})"/.exec(output)?.[1];
}

/** Newest checkpoint in the state directory (or of `runId`), or undefined when none is readable yet. */
export function readCheckpoint(stateDir: string, runId?: string): Checkpoint | undefined {
  const dir = path.join(stateDir, 'runs');
  const file = runId
    ? path.join(dir, `${runId}.json`)
    : readdirSafe(dir).filter((f) => f.endsWith('.json')).sort().map((f) => path.join(dir, f)).at(-1);
  if (!file) return undefined;
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as Checkpoint;
  } catch {
    return undefined; // not written yet (writes are atomic renames, so never half-written)
  }
}

function readdirSafe(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/**
 * Starts the built CLI as a child, collecting its output; `killOn` kills it at a chosen moment
 * (an output line, or a checkpoint state) the instant it is seen.
 */
export function spawnCli(args: string[], sandbox: CliSandbox, options: SpawnOptions = {}): CliProcess {
  const runsDir = path.join(sandbox.stateDir, 'runs');
  // Created up front (with the store's own mode) so it can be watched from the first write.
  mkdirSync(runsDir, { recursive: true, mode: 0o700 });
  const env = { ...baseEnv(), ...sandbox.env, ...options.env };
  if (sandbox.pathPrefix.length) env.PATH = [...sandbox.pathPrefix, env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin'].join(':');
  const spawnOptions = { cwd: options.cwd ?? sandbox.home, env: { ...env, SHELL: '/bin/sh' } };
  // On a terminal, stdout and stderr both arrive as `script`'s stdout.
  const child = options.terminal
    ? spawn('script', ['--quiet', '--flush', '--return', '--command', `exec ${[process.execPath, CLI_BIN, ...args].map(shellQuote).join(' ')}`, '/dev/null'], { ...spawnOptions, stdio: ['pipe', 'pipe', 'pipe'] })
    : spawn(process.execPath, [CLI_BIN, ...args], { ...spawnOptions, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  let killed = false;
  let runId: string | undefined;
  const listeners = new Set<() => void>();
  const notify = () => {
    for (const listener of [...listeners]) listener();
  };

  const kill = (signal: NodeJS.Signals = 'SIGKILL') => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    killed = true;
    child.kill(signal);
  };
  const checkpoint = () => readCheckpoint(sandbox.stateDir, runId ?? runIdIn(stdout + stderr));

  const killOn = options.killOn;
  const checkKillOn = () => {
    if (!killOn || killed) return;
    if (killOn.output !== undefined && matches(stdout + stderr, killOn.output)) kill(killOn.signal);
    else if (killOn.checkpoint) {
      const current = checkpoint();
      if (current && killOn.checkpoint(current)) kill(killOn.signal);
    }
  };
  const onOutput = () => {
    runId ??= runIdIn(stdout + stderr);
    checkKillOn();
    notify();
  };
  child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString(); onOutput(); });
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString(); onOutput(); });

  // Checkpoints are renamed into place: the watcher fires on each write; the interval covers
  // events a busy machine coalesces.
  let watcher: FSWatcher | undefined;
  try {
    watcher = watch(runsDir, () => { checkKillOn(); notify(); });
  } catch {
    watcher = undefined;
  }
  const poll = setInterval(() => { checkKillOn(); notify(); }, 25);
  const timer = setTimeout(() => kill('SIGKILL'), options.timeoutMs ?? 300_000);

  const exited = new Promise<CliExit>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearInterval(poll);
      clearTimeout(timer);
      watcher?.close();
      notify();
      listeners.clear();
      resolve({ code, signal, stdout, stderr, killed });
    });
  });
  const done = () => child.exitCode !== null || child.signalCode !== null;

  const waitUntil = <T>(probe: () => T | undefined, what: string, timeoutMs: number): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const deadline = setTimeout(() => finish(new Error(`timed out after ${timeoutMs} ms waiting for ${what}\n${stdout}\n${stderr}`)), timeoutMs);
      const check = () => {
        const value = probe();
        if (value !== undefined) finish(undefined, value);
        else if (done()) finish(new Error(`the CLI exited (${child.exitCode ?? child.signalCode}) before ${what}\n${stdout}\n${stderr}`));
      };
      const finish = (error?: Error, value?: T) => {
        clearTimeout(deadline);
        listeners.delete(check);
        if (error) reject(error);
        else resolve(value as T);
      };
      listeners.add(check);
      check();
    });

  return {
    pid: child.pid!,
    stdout: () => stdout,
    stderr: () => stderr,
    runId: () => runId ?? runIdIn(stdout + stderr) ?? readCheckpoint(sandbox.stateDir)?.runId,
    waitForOutput: (pattern, timeoutMs = 120_000) =>
      waitUntil(() => (matches(stdout + stderr, pattern) ? true : undefined), `output ${String(pattern)}`, timeoutMs).then(() => undefined),
    waitForCheckpoint: (test, timeoutMs = 120_000) =>
      waitUntil(() => {
        const current = checkpoint();
        return current && test(current) ? current : undefined;
      }, 'the checkpoint state', timeoutMs),
    kill,
    type: (keys) => {
      if (!options.terminal) throw new Error('type() needs a run started with { terminal: true }');
      child.stdin!.write(keys);
    },
    exited,
  };
}

/** Runs the CLI to its end. */
export function runCliIn(sandbox: CliSandbox, args: string[], options: SpawnOptions = {}): Promise<CliExit> {
  return spawnCli(args, sandbox, options).exited;
}

/**
 * Puts a `docker` first on PATH that records the password `docker login --password-stdin` is
 * given (so a test can look for that exact secret elsewhere), then runs the real docker.
 */
export async function recordDockerLogins(sandbox: CliSandbox): Promise<{ passwords(): Promise<string[]> }> {
  const dir = path.join(sandbox.home, 'docker-shim');
  const log = path.join(dir, 'passwords');
  await mkdir(dir, { recursive: true });
  const { stdout: realDocker } = await run('sh', ['-c', 'command -v docker']);
  // printf is a shell builtin: the password never appears in an argv.
  await writeFile(path.join(dir, 'docker'), [
    '#!/bin/sh',
    'if [ "$1" = login ]; then',
    '  password=$(cat)',
    `  printf '%s\\n' "$password" >>${shellQuote(log)}`,
    `  printf '%s' "$password" | ${shellQuote(realDocker.trim())} "$@"`,
    '  exit $?',
    'fi',
    `exec ${shellQuote(realDocker.trim())} "$@"`,
    '',
  ].join('\n'));
  await chmod(path.join(dir, 'docker'), 0o755);
  sandbox.pathPrefix.unshift(dir);
  return { passwords: async () => (await readFile(log, 'utf8').catch(() => '')).split('\n').filter(Boolean) };
}

// ---- what a run leaves behind --------------------------------------------------------------------

/** Temporary resources still in the twin: anything but the reusable role, profile, repository and bucket. */
export function temporaryLeftovers(resources: TwinResources): string[] {
  return [
    ...resources.instances.filter((i) => i.state !== 'terminated').map((i) => `instance ${i.id} (${i.state})`),
    ...resources.volumes.map((v) => `volume ${v.id} (${v.state}${v.attachment ? `, attached to ${v.attachment.instanceId}` : ''})`),
    // The twin's listing already leaves out the VPCs' `default` groups.
    ...resources.securityGroups.map((g) => `security group ${g.id} (${g.name})`),
    ...resources.roles.flatMap((r) => r.inlinePolicies.filter((p) => p.startsWith('ami2docker-run-')).map((p) => `inline policy ${p} on ${r.name}`)),
  ];
}

/**
 * Asserts that no temporary resource is left. Termination and volume deletion finish
 * asynchronously in AWS (and in the twin), so this waits up to `timeoutMs` for them to settle.
 */
export async function expectNoTemporaryLeftovers(twin: RunningTwin, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let leftovers = temporaryLeftovers(await twin.control.resources());
  while (leftovers.length > 0 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 250));
    leftovers = temporaryLeftovers(await twin.control.resources());
  }
  expect(leftovers).toEqual([]);
}

export interface RunCreations { volumes: string[]; instances: string[]; securityGroups: string[] }

const CREATION_KIND: Record<string, keyof RunCreations> = { CreateVolume: 'volumes', RunInstances: 'instances', CreateSecurityGroup: 'securityGroups' };

/** What each run really created (not what an idempotent retry returned), by run id tag. */
export function creationsByRun(history: HistoryEntry[]): Map<string, RunCreations> {
  const runs = new Map<string, RunCreations>();
  for (const entry of history) {
    const kind = CREATION_KIND[entry.operation];
    if (!kind || entry.created !== true || entry.error || !entry.id) continue;
    const runId = entry.tags?.[TAG_RUN_ID] ?? '(untagged)';
    const creations = runs.get(runId) ?? { volumes: [], instances: [], securityGroups: [] };
    creations[kind].push(entry.id);
    runs.set(runId, creations);
  }
  return runs;
}

/** Every run created at most one volume, one instance and one security group, ever, and tagged them. */
export async function expectNoDuplicateCreations(twin: RunningTwin): Promise<Map<string, RunCreations>> {
  const runs = creationsByRun(await twin.control.history());
  expect(runs.has('(untagged)')).toBe(false);
  for (const [runId, creations] of runs) {
    expect({ runId, volumes: creations.volumes.length <= 1, instances: creations.instances.length <= 1, securityGroups: creations.securityGroups.length <= 1 })
      .toEqual({ runId, volumes: true, instances: true, securityGroups: true });
  }
  return runs;
}

/** Mutating calls the twin answered with success (a DryRun probe or a denied call does not count). */
export function successfulMutations(history: HistoryEntry[]): HistoryEntry[] {
  return history.filter((entry) => !entry.error);
}

// ---- checkpoints and secrets ---------------------------------------------------------------------

/** Every checkpoint file (and previous copy) under the state directory. */
export async function checkpointFiles(stateDir: string): Promise<string[]> {
  const dir = path.join(stateDir, 'runs');
  return (await readdir(dir).catch(() => [] as string[]))
    .filter((f) => f.endsWith('.json') || f.endsWith('.json.prev'))
    .map((f) => path.join(dir, f));
}

/** Checkpoints are owner-only, hold none of `secrets` (plain or base64) and no ECR token. Returns how many files were checked. */
export async function expectCheckpointsKeepSecrets(stateDir: string, secrets: string[]): Promise<number> {
  const files = await checkpointFiles(stateDir);
  for (const file of files) {
    expect({ file, mode: ((await stat(file)).mode & 0o777).toString(8) }).toEqual({ file, mode: '600' });
    const text = await readFile(file, 'utf8');
    // Whatever password a run saw, an ECR authorization token is base64 of `AWS:<password>`.
    expect({ file, holdsAuthorizationToken: /QVdTO[A-Za-z0-9+/=]{16,}/.test(text) }).toEqual({ file, holdsAuthorizationToken: false });
    for (const secret of secrets.filter(Boolean)) {
      expect({ file, holdsSecret: text.includes(secret) || text.includes(Buffer.from(secret).toString('base64')) }).toEqual({ file, holdsSecret: false });
    }
  }
  return files.length;
}

/** An SDK client of `Client` that talks to the twin as the test user. */
export function twinClient<T>(twin: RunningTwin, Client: new (config: Record<string, unknown>) => T): T {
  return new Client({
    region: twin.env.AWS_REGION,
    endpoint: twin.url,
    credentials: { accessKeyId: twin.env.AWS_ACCESS_KEY_ID!, secretAccessKey: twin.env.AWS_SECRET_ACCESS_KEY! },
  });
}

/** A registry password as the twin's ECR hands them out (decoded from GetAuthorizationToken with the SDK). */
export async function registryPassword(twin: RunningTwin): Promise<string> {
  const { ECRClient, GetAuthorizationTokenCommand } = await import('@aws-sdk/client-ecr');
  const client = twinClient(twin, ECRClient);
  try {
    const answer = await client.send(new GetAuthorizationTokenCommand({}));
    const decoded = Buffer.from(answer.authorizationData?.[0]?.authorizationToken ?? '', 'base64').toString('utf8');
    if (!decoded.startsWith('AWS:')) throw new Error(`unexpected ECR token shape: ${decoded.slice(0, 4)}…`);
    return decoded.slice('AWS:'.length);
  } finally {
    client.destroy();
  }
}

// ---- the README's caller policy ------------------------------------------------------------------

export interface CallerPolicy extends PolicyDocument {
  Statement: { Sid?: string; Effect: 'Allow' | 'Deny'; Action: string[]; Resource: string | string[] }[];
}

/** The IAM policy README.md gives for the person or role running ami2docker. */
export function readmeCallerPolicy(): CallerPolicy {
  const readme = readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('### For the person or role running ami2docker'));
  const json = /```json\n([\s\S]*?)\n```/.exec(section)?.[1];
  if (!json) throw new Error('README has no caller policy block');
  return JSON.parse(json) as CallerPolicy;
}

/** `policy` without `action` in any statement. */
export function withoutAction(policy: CallerPolicy, action: string): CallerPolicy {
  return { ...policy, Statement: policy.Statement.map((s) => ({ ...s, Action: s.Action.filter((a) => a !== action) })) };
}

/** The CLI's error lines (`ami2docker: ...` on stderr, for people); a failure prints exactly one. */
export function errorLines(stderr: string): string[] {
  return stderr.split('\n').filter((line) => line.startsWith('ami2docker: '));
}

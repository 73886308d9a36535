// Starts and stops an AWS twin (test/twin/server.ts, compiled) as a child process and talks to its
// control API. Tests point the CLI or an SDK client at it with `twin.env`.
//
//   const twin = await startTwin({ amis: [{ name: 'debian-12', disk: '/tmp/disk.img' }], timeScale: 0.05 });
//   try { ...run with env: twin.env...; expect((await twin.control.resources()).instances) ... }
//   finally { await twin.stop(); }
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FaultSpec } from '../twin/faults.js';
import type { PolicyDocument } from '../twin/policy.js';
import type { AmiSpec } from '../twin/services/ec2-resources.js';
import type { HistoryEntry } from '../twin/twin.js';

export type { AmiSpec, FaultSpec, HistoryEntry, PolicyDocument };

export const TWIN_SERVER = fileURLToPath(new URL('../twin/server.js', import.meta.url));
const READY = 'AMI2DOCKER_TWIN_READY';

export interface TwinOptions {
  amis?: AmiSpec[];
  /** AWS latencies are multiplied by this (0.05: an instance boots in 0.75 s). */
  timeScale?: number;
  /** AWS latencies vary by up to this fraction around their nominal values (default 0: exact). */
  latencyJitter?: number;
  /** The IAM policy the caller is held to; none: everything is allowed. */
  policy?: PolicyDocument;
  region?: string;
  account?: string;
  /** Docker registry standing in for ECR (default $AMI2DOCKER_TEST_REGISTRY or 127.0.0.1:5000). */
  registry?: string;
}

type Tags = Record<string, string>;

export interface TwinResources {
  instances: { id: string; state: string; imageId: string; availabilityZone: string; instanceProfile?: string; shutdownBehavior: string; tags: Tags }[];
  volumes: {
    id: string;
    state: string;
    root: boolean;
    availabilityZone: string;
    snapshotId?: string;
    attachment?: { instanceId: string; device: string; state: string; deleteOnTermination: boolean };
    tags: Tags;
  }[];
  securityGroups: { id: string; name: string; vpcId: string; tags: Tags }[];
  roles: { name: string; attachedPolicies: string[]; inlinePolicies: string[]; tags: Tags }[];
  instanceProfiles: { name: string; role?: string; tags: Tags }[];
  repositories: { name: string; uri: string; tags: Tags }[];
  buckets: { name: string; tags: Tags; keys: string[] }[];
  commands: { id: string; comment: string; status: string; instanceIds: string[] }[];
}

export interface TwinControl {
  resources(): Promise<TwinResources>;
  history(): Promise<HistoryEntry[]>;
  fault(spec: FaultSpec): Promise<void>;
  clearFaults(): Promise<void>;
  /** Holds the caller to `policy`; undefined lifts it. */
  setPolicy(policy: PolicyDocument | undefined): Promise<void>;
}

export interface RunningTwin {
  url: string;
  /** Everything a process needs to talk to the twin as the test user. */
  env: Record<string, string>;
  stateDir: string;
  control: TwinControl;
  /** What the twin wrote to stderr so far (for failure messages). */
  logs(): string;
  /** SIGTERM: the twin removes its instances, loop devices and volume files; then its state dir goes. */
  stop(): Promise<void>;
}

/** Dummy credentials: the twin accepts any signature, and treats this key as the test user. */
const ACCESS_KEY_ID = 'AKIAIOSFODNN7EXAMPLE';
const SECRET_ACCESS_KEY = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';

export async function startTwin(options: TwinOptions = {}): Promise<RunningTwin> {
  const stateDir = await mkdtemp(join(tmpdir(), 'ami2docker-twin-'));
  const region = options.region ?? 'us-east-1';
  const args = [
    TWIN_SERVER,
    '--state-dir', stateDir,
    '--port', '0',
    '--time-scale', String(options.timeScale ?? 0.05),
    '--latency-jitter', String(options.latencyJitter ?? 0),
    '--registry', options.registry ?? process.env.AMI2DOCKER_TEST_REGISTRY ?? '127.0.0.1:5000',
    '--region', region,
  ];
  if (options.account) args.push('--account', options.account);
  if (options.amis) {
    await writeFile(join(stateDir, 'amis.json'), JSON.stringify(options.amis));
    args.push('--amis', join(stateDir, 'amis.json'));
  }
  if (options.policy) {
    await writeFile(join(stateDir, 'policy.json'), JSON.stringify(options.policy));
    args.push('--policy', join(stateDir, 'policy.json'));
  }
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let url: string;
  try {
    url = await readyUrl(child, () => stderr);
  } catch (error) {
    child.kill('SIGKILL');
    await exited;
    await rm(stateDir, { recursive: true, force: true });
    throw error;
  }
  const env = {
    AWS_ENDPOINT_URL: url,
    AWS_ACCESS_KEY_ID: ACCESS_KEY_ID,
    AWS_SECRET_ACCESS_KEY: SECRET_ACCESS_KEY,
    AWS_REGION: region,
    AWS_DEFAULT_REGION: region,
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  };
  return {
    url,
    env,
    stateDir,
    control: controlClient(url),
    logs: () => stderr,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
        await exited;
        clearTimeout(timer);
      }
      await rm(stateDir, { recursive: true, force: true });
    },
  };
}

function readyUrl(child: ChildProcess, stderr: () => string, timeoutMs = 30_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let stdout = '';
    const timer = setTimeout(() => reject(new Error(`twin did not start within ${timeoutMs} ms: ${stderr()}`)), timeoutMs);
    child.stdout!.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      const match = new RegExp(`${READY} (\\S+)`).exec(stdout);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`twin exited (${code}) before it was ready: ${stderr()}`));
    });
  });
}

function controlClient(url: string): TwinControl {
  const call = async (method: string, path: string, body?: unknown): Promise<unknown> => {
    const response = await fetch(`${url}/__twin/${path}`, {
      method,
      headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const value = (await response.json()) as unknown;
    if (!response.ok) throw new Error(`twin control ${method} ${path}: ${JSON.stringify(value)}`);
    return value;
  };
  return {
    resources: async () => (await call('GET', 'resources')) as TwinResources,
    history: async () => (await call('GET', 'history')) as HistoryEntry[],
    fault: async (spec) => void (await call('POST', 'faults', spec)),
    clearFaults: async () => void (await call('DELETE', 'faults')),
    setPolicy: async (policy) => void (policy ? await call('POST', 'policy', policy) : await call('DELETE', 'policy')),
  };
}

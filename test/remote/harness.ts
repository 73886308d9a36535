// Runs src/effects/remote/convert.sh the way SSM's AWS-RunShellScript does on the helper: an
// `export NAME='value'` prelude, then `bash FILE </dev/null`, as root, with a minimal environment.
// The attached volume appears under its Nitro name in a private mount namespace's /dev/disk/by-id.
import { spawn } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { REPO_ROOT } from '../fixtures/disk.js';

export const CONVERT_SCRIPT = path.join(REPO_ROOT, 'src/effects/remote/convert.sh');
export const REGISTRY = process.env.AMI2DOCKER_TEST_REGISTRY ?? '127.0.0.1:5000';
export const DOCKER_HOST = process.env.DOCKER_HOST ?? 'unix:///tmp/ami2docker-services/docker.sock';

/** The script's input contract. */
export interface ConversionEnv {
  A2D_VOLUME_ID: string;
  A2D_DEVICE: string;
  A2D_REPOSITORY_URI: string;
  A2D_TAGS: string;
  A2D_PLATFORM: string;
  A2D_REGION: string;
  A2D_AMI_ID: string;
  A2D_AMI_NAME: string;
  A2D_AMI_CREATION_DATE: string;
  A2D_CHANGES: string;
  A2D_EXCLUDES: string;
  A2D_COMPRESSION: string;
  A2D_DISK_WAIT_SECONDS?: string;
}

export interface RunOptions {
  env: ConversionEnv;
  /** Loop device to expose as /dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_vol<id>; omit to expose nothing. */
  attachAs?: string;
  /** Directories put first on PATH (test-only `aws`, argv loggers). */
  pathPrefix: string[];
  /** The rest of PATH; the usual system directories unless given. */
  systemPath?: string[];
  /** TMPDIR for the script, so a test can check it left nothing behind. */
  tmpDir: string;
  /** Run without a private mount namespace (for checks of what the script leaves mounted). */
  noNamespace?: boolean;
  /** Report any process whose argv contains this string while the script runs. */
  watchArgvFor?: string;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
  /** Parsed AMI2DOCKER_RESULT, when it is the last stdout line. */
  result?: { imageUri: string; digest: string; tags: string[] };
  steps: { step: string; text: string }[];
  /** The AMI2DOCKER_ERROR line's step and message. */
  error?: { step: string; message: string };
  /** Command lines seen holding `watchArgvFor`. */
  argvLeaks: string[];
}

export const SYSTEM_PATH = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

const shellQuote = (value: string) => `'${value.replace(/'/g, `'\\''`)}'`;

export function nitroName(volumeId: string): string {
  return `/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_${volumeId.replace('-', '')}`;
}

export async function runConversion(options: RunOptions): Promise<RunResult> {
  const dir = await mkdtemp(path.join(tmpdir(), 'a2d-ssm-'));
  const prelude = Object.entries(options.env)
    .filter(([, value]) => value !== undefined)
    .map(([name, value]) => `export ${name}=${shellQuote(value as string)}`)
    .join('\n');
  const command = path.join(dir, 'command.sh');
  await writeFile(command, `${prelude}\nbash ${shellQuote(CONVERT_SCRIPT)} </dev/null\n`);

  const expose = options.attachAs
    ? `mkdir -p /dev/disk/by-id && mount -t tmpfs none /dev/disk/by-id && ln -s ${shellQuote(options.attachAs)} ${shellQuote(nitroName(options.env.A2D_VOLUME_ID))} && `
    : 'mkdir -p /dev/disk/by-id && mount -t tmpfs none /dev/disk/by-id && ';
  const [file, args] = options.noNamespace
    ? ['bash', [command]]
    : ['unshare', ['-m', '--propagation', 'private', 'bash', '-c', `${expose}exec bash ${shellQuote(command)}`]];

  const env = {
    PATH: [...options.pathPrefix, ...(options.systemPath ?? SYSTEM_PATH)].join(':'),
    HOME: '/root',
    TMPDIR: options.tmpDir,
  };
  const watcher = options.watchArgvFor ? watchArgv(options.watchArgvFor) : undefined;
  try {
    const { code, stdout, stderr } = await spawnCollect(file, args as string[], env);
    return { code, stdout, stderr, ...parseOutput(stdout, stderr), argvLeaks: watcher ? watcher.stop() : [] };
  } finally {
    watcher?.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

function spawnCollect(file: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

export function parseOutput(stdout: string, stderr: string): Pick<RunResult, 'result' | 'steps' | 'error'> {
  const lines = stdout.split('\n').filter((line) => line !== '');
  const steps = lines
    .filter((line) => line.startsWith('AMI2DOCKER_STEP '))
    .map((line) => {
      const [, step, ...rest] = line.split(' ');
      return { step, text: rest.join(' ') };
    });
  const last = lines.at(-1) ?? '';
  const result = last.startsWith('AMI2DOCKER_RESULT ') ? JSON.parse(last.slice('AMI2DOCKER_RESULT '.length)) : undefined;
  const errorLine = stderr.split('\n').find((line) => line.startsWith('AMI2DOCKER_ERROR '));
  const match = errorLine?.match(/^AMI2DOCKER_ERROR ([^:]+): (.*)$/);
  return { steps, result, error: match ? { step: match[1], message: match[2] } : undefined };
}

/** Polls every process's command line (every few ms) for `needle`. */
function watchArgv(needle: string): { stop(): string[] } {
  const leaks = new Set<string>();
  const scan = () => {
    for (const pid of readdirSync('/proc')) {
      if (!/^\d+$/.test(pid)) continue;
      try {
        const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'latin1');
        if (cmdline.includes(needle)) leaks.add(cmdline.replace(/\0/g, ' '));
      } catch {
        // the process exited meanwhile
      }
    }
  };
  const timer = setInterval(scan, 5);
  return {
    stop: () => {
      clearInterval(timer);
      return [...leaks];
    },
  };
}

/**
 * A directory of test-only commands put first on PATH: `aws` (prints `password`, or fails when it
 * is undefined) and a `curl` that records its argv in `curl-argv.log` and runs the real curl.
 */
export async function makeShims(dir: string, password: string | undefined): Promise<{ dir: string; curlArgv: () => Promise<string> }> {
  await mkdir(dir, { recursive: true });
  const aws = password === undefined
    ? '#!/bin/sh\necho "Unable to locate credentials. You can configure credentials by running \\"aws configure\\"." >&2\nexit 253\n'
    : `#!/bin/sh\n[ "$1 $2" = "ecr get-login-password" ] || { echo "unexpected aws $*" >&2; exit 2; }\nprintf '%s\\n' ${shellQuote(password)}\n`;
  await writeFile(path.join(dir, 'aws'), aws);
  const log = path.join(dir, 'curl-argv.log');
  await writeFile(path.join(dir, 'curl'), `#!/bin/sh\nprintf '%s\\n' "$*" >>${shellQuote(log)}\nexec /usr/bin/curl "$@"\n`);
  await chmod(path.join(dir, 'aws'), 0o755);
  await chmod(path.join(dir, 'curl'), 0o755);
  return { dir, curlArgv: () => readFile(log, 'utf8').catch(() => '') };
}

/** Entries the script left in its TMPDIR (should be none). */
export async function leftovers(dir: string): Promise<string[]> {
  return readdir(dir).catch(() => []);
}

/** Mounts (from /proc/mounts) whose source is one of `devices`. */
export async function mountsOf(devices: string[]): Promise<string[]> {
  const mounts = await readFile('/proc/mounts', 'utf8');
  return mounts.split('\n').filter((line) => devices.includes(line.split(' ')[0]));
}

/**
 * A stand-in for a helper that lacks `missing`: one directory with links to every system command
 * except those, plus a `dnf` that "installs" a package by linking its command in and logs its argv.
 */
export async function toolboxWithout(dir: string, missing: string[]): Promise<{ dir: string; dnfLog: () => Promise<string> }> {
  await mkdir(dir, { recursive: true });
  const linked = new Set<string>();
  for (const systemDir of SYSTEM_PATH) {
    for (const name of await readdir(systemDir).catch(() => [] as string[])) {
      if (missing.includes(name) || name === 'dnf' || linked.has(name)) continue;
      linked.add(name);
      await symlink(path.join(systemDir, name), path.join(dir, name));
    }
  }
  const log = path.join(dir, 'dnf-argv.log');
  const links = missing.map((name) => `  ${name}) ln -s ${shellQuote(`/usr/bin/${name}`)} ${shellQuote(path.join(dir, name))} ;;`).join('\n');
  await writeFile(
    path.join(dir, 'dnf'),
    `#!/bin/sh\nprintf '%s\\n' "$*" >>${shellQuote(log)}\nsleep 0.3\nfor p in "$@"; do\n  case $p in\n${links}\n  esac\ndone\n`,
  );
  await chmod(path.join(dir, 'dnf'), 0o755);
  return { dir, dnfLog: () => readFile(log, 'utf8').catch(() => '') };
}

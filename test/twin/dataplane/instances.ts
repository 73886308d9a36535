// An instance is a long-lived process in its own mount namespace. Inside it, /dev/disk/by-id and
// /mnt are private, so attached volumes appear under their EBS names and whatever the instance
// mounts stays its own. Processes run inside with `nsenter`, as root, with the instance's
// environment: its role's credentials, the twin as endpoint, and a `shutdown` that asks the twin.
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, openSync, closeSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { killAll, mountNamespaceOf, processesInNamespace, processTree, run } from './exec.js';

export interface RuntimeOptions {
  instanceId: string;
  /** Per-instance directory under the twin's state dir. */
  dir: string;
  twinUrl: string;
  region: string;
  credentials?: { accessKeyId: string; secretAccessKey: string };
}

export interface Execution {
  pid: number;
  /** Exit code, or the signal that ended it. */
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(): Promise<void>;
}

// The namespace's first process: private mounts, then it waits on stdin, which closes when the
// twin exits however it exits, so no instance outlives its twin. The shims are also laid over
// /usr/sbin (where shutdown, poweroff, ... live), so even an absolute path cannot reach the host's.
function initScript(bin: string): string {
  return [
    'mount -t tmpfs -o mode=0755 tmpfs /dev/disk/by-id',
    'mount -t tmpfs -o mode=0755 tmpfs /mnt',
    `{ mount -t overlay overlay -o 'lowerdir=${bin}:/usr/sbin' /usr/sbin || echo 'twin: /usr/sbin not shimmed' >&2; }`,
    'echo ready',
    'read _',
  ].join(' && ');
}

export class InstanceRuntime {
  private constructor(
    private readonly options: RuntimeOptions,
    private readonly init: ChildProcess,
    private readonly namespace: string,
    readonly env: Record<string, string>,
  ) {}

  static async start(options: RuntimeOptions): Promise<InstanceRuntime> {
    mkdirSync('/dev/disk/by-id', { recursive: true });
    const bin = join(options.dir, 'bin');
    const home = join(options.dir, 'home');
    mkdirSync(bin, { recursive: true });
    mkdirSync(home, { recursive: true });
    writeExecutable(join(bin, 'shutdown'), shutdownShim(options.twinUrl, options.instanceId));
    // The host's own poweroff/halt/reboot must never run from inside an instance.
    writeExecutable(join(bin, 'poweroff'), POWEROFF_SHIM);
    writeExecutable(join(bin, 'halt'), POWEROFF_SHIM);
    writeExecutable(join(bin, 'reboot'), REBOOT_SHIM);
    writeExecutable(join(bin, 'systemctl'), SYSTEMCTL_SHIM);
    writeExecutable(join(bin, 'aws'), AWS_SHIM);
    const init = spawn('unshare', ['--mount', '--propagation', 'private', '--', '/bin/sh', '-c', initScript(bin)], { stdio: ['pipe', 'pipe', 'pipe'] });
    await waitForReady(init);
    const namespace = mountNamespaceOf(init.pid!);
    if (!namespace) throw new Error(`instance ${options.instanceId}: namespace process exited`);
    return new InstanceRuntime(options, init, namespace, instanceEnv(options, bin, home));
  }

  get pid(): number {
    return this.init.pid!;
  }

  /**
   * Runs an executable file inside the instance the way the SSM agent and cloud-init do
   * (`sh -c FILE`, so its `#!` line chooses the interpreter), output to the given files.
   */
  execute(file: string, cwd: string, stdoutPath: string, stderrPath: string): Execution {
    const out = openSync(stdoutPath, 'a');
    const err = openSync(stderrPath, 'a');
    const child = spawn('nsenter', ['--target', String(this.pid), '--mount', `--wd=${cwd}`, '--', '/bin/sh', '-c', file], {
      env: this.env,
      stdio: ['ignore', out, err],
      detached: true,
    });
    closeSync(out);
    closeSync(err);
    const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
      child.once('error', () => resolve({ code: 127, signal: null }));
      child.once('exit', (code, signal) => resolve({ code, signal }));
    });
    return {
      pid: child.pid ?? -1,
      done,
      kill: async () => {
        if (child.pid) await killAll(processTree(child.pid));
        await done;
      },
    };
  }

  /** Makes `name` under /dev/disk/by-id point at `target`, as udev would on the instance. */
  async link(name: string, target: string): Promise<void> {
    await this.inside(`ln -sfn '${target}' '/dev/disk/by-id/${name}'`);
  }

  async unlink(names: string[]): Promise<void> {
    if (names.length === 0) return;
    await this.inside(`rm -f ${names.map((n) => `'/dev/disk/by-id/${n}'`).join(' ')}`);
  }

  private async inside(script: string): Promise<void> {
    await run('nsenter', ['--target', String(this.pid), '--mount', '--', '/bin/sh', '-c', script]);
  }

  /** Ends every process in the instance; its private mounts go with the namespace. */
  async stop(): Promise<void> {
    await killAll(processesInNamespace(this.namespace));
    this.init.stdin?.destroy();
  }

  get instanceId(): string {
    return this.options.instanceId;
  }
}

function waitForReady(init: ChildProcess): Promise<void> {
  return new Promise((resolve, reject) => {
    let stderr = '';
    init.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    init.stdout!.once('data', () => resolve());
    init.once('error', reject);
    init.once('exit', (code) => reject(new Error(`instance namespace exited (${code}): ${stderr.trim()}`)));
  });
}

function instanceEnv(options: RuntimeOptions, bin: string, home: string): Record<string, string> {
  const env: Record<string, string> = {
    PATH: `${bin}:/usr/bin:/usr/sbin:/bin:/sbin`,
    HOME: home,
    LANG: 'C.UTF-8',
    AWS_ENDPOINT_URL: options.twinUrl,
    AWS_REGION: options.region,
    AWS_DEFAULT_REGION: options.region,
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  };
  if (options.credentials) {
    env.AWS_ACCESS_KEY_ID = options.credentials.accessKeyId;
    env.AWS_SECRET_ACCESS_KEY = options.credentials.secretAccessKey;
  }
  if (process.env.DOCKER_HOST) env.DOCKER_HOST = process.env.DOCKER_HOST;
  return env;
}

function writeExecutable(path: string, content: string): void {
  writeFileSync(path, content);
  chmodSync(path, 0o755);
}

// AWS CLI v2 releases before 2.13 ignore AWS_ENDPOINT_URL; Debian 12 ships 2.9. An instance's
// `aws` therefore passes the endpoint on, so scripts written for a real instance run unchanged.
const AWS_SHIM = `#!/bin/sh
if [ -n "$AWS_ENDPOINT_URL" ]; then exec /usr/bin/aws --endpoint-url "$AWS_ENDPOINT_URL" "$@"; fi
exec /usr/bin/aws "$@"
`;

const POWEROFF_SHIM = `#!/bin/sh
exec "$(dirname "$0")/shutdown" -h now
`;

const SYSTEMCTL_SHIM = `#!/bin/sh
case "$1" in
  poweroff|halt) exec "$(dirname "$0")/shutdown" -h now ;;
  reboot|kexec) exec "$(dirname "$0")/reboot" ;;
esac
exec /usr/bin/systemctl "$@"
`;

const REBOOT_SHIM = `#!/bin/sh
echo "reboot: an instance reboot is not modelled by the twin; nothing done" >&2
`;

/** `shutdown [-h|-P|-c] [now|+MIN|HH:MM] [message]`, scheduled by the twin instead of systemd. */
function shutdownShim(twinUrl: string, instanceId: string): string {
  return `#!/bin/sh
minutes=1
cancel=false
for arg in "$@"; do
  case "$arg" in
    -c) cancel=true ;;
    -k) echo "shutdown -k: wall message only" >&2; exit 0 ;;
    -r|--reboot) exec "$(dirname "$0")/reboot" ;;
    -*) ;;
    now) minutes=0 ;;
    +[0-9]*) minutes=\${arg#+} ;;
    [0-9]*:[0-9]*)
      target=$(date -d "$arg" +%s) || exit 1
      now=$(date +%s)
      [ "$target" -lt "$now" ] && target=$((target + 86400))
      minutes=$(( (target - now + 59) / 60 )) ;;
    *) break ;;
  esac
done
curl -fsS -X POST -H 'content-type: application/json' \\
  --data "{\\"instanceId\\":\\"${instanceId}\\",\\"minutes\\":$minutes,\\"cancel\\":$cancel}" \\
  '${twinUrl}/__twin/shutdown-instance' >/dev/null || exit 1
if [ "$cancel" = true ]; then exit 0; fi
echo "Shutdown scheduled for $(date -d "+$minutes minutes"), use 'shutdown -c' to cancel." >&2
`;
}

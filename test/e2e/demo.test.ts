// `npm run demo` does what the README promises: a real conversion on the bundled AWS twin, the image
// in the local engine, the `docker run` command to use it; and it stops the twin however it ends.
// Needs root and `scripts/services.sh start`.
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT } from '../fixtures/disk.js';
import { baseEnv, docker, REGISTRY, requireServices } from '../support/e2e.js';

const run = promisify(execFile);
const DEMO_IMAGE = `${REGISTRY}/ami2docker-demo-al2023`;
/** Where scripts/services.sh finds the services: as this test process was told, if it was. */
const SERVICES_ENV = Object.fromEntries(
  ['AMI2DOCKER_SERVICES_DIR', 'AMI2DOCKER_REGISTRY_ADDR'].filter((name) => process.env[name]).map((name) => [name, process.env[name]!]),
);

let demoDir: string;
const madeImages: string[] = [];

beforeAll(async () => {
  await requireServices();
  demoDir = await mkdtemp(path.join(tmpdir(), 'a2d-e2e-demo-'));
});

afterAll(async () => {
  for (const image of madeImages) await docker('rmi', image).catch(() => undefined);
  if (demoDir) await rm(demoDir, { recursive: true, force: true });
});

interface DemoRun { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }

/**
 * Runs the demo as a user would, in its own process group (a terminal's Ctrl-C goes to the whole
 * foreground group, so `interruptWhen` sends SIGINT to the group).
 */
function demo(command: string[], env: Record<string, string>, interruptWhen?: string): Promise<DemoRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(command[0]!, command.slice(1), { cwd: REPO_ROOT, env: { ...baseEnv(), ...SERVICES_ENV, ...env }, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let interrupted = false;
    const timer = setTimeout(() => process.kill(-child.pid!, 'SIGKILL'), 300_000);
    const watch = () => {
      if (interruptWhen && !interrupted && (stdout + stderr).includes(interruptWhen)) {
        interrupted = true;
        process.kill(-child.pid!, 'SIGINT');
      }
    };
    child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString(); watch(); });
    child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString(); watch(); });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** Processes whose command line mentions `text` (a twin left running would). */
function processesMentioning(text: string): string[] {
  const found: string[] = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
      if (cmdline.includes(text)) found.push(`${pid}: ${cmdline}`);
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

/** The demo left nothing running or attached: only its cached disk stays in its directory. */
async function expectDemoCleanedUp(): Promise<void> {
  expect(processesMentioning(demoDir)).toEqual([]);
  const { stdout } = await run('losetup', ['-a']);
  expect(stdout.split('\n').filter((line) => line.includes(demoDir) && !line.endsWith('.img)'))).toEqual([]);
  expect(stdout).not.toContain(`${demoDir}/run.`);
  expect((await readdir(demoDir)).filter((entry) => entry.startsWith('run.'))).toEqual([]);
}

describe('npm run demo', () => {
  it('refuses to start without the local services, saying how to start them', async () => {
    const noServices = path.join(demoDir, 'no-services');
    const result = await demo(['bash', 'scripts/demo.sh'], {
      AMI2DOCKER_DEMO_DIR: demoDir,
      AMI2DOCKER_SERVICES_DIR: noServices,
      AMI2DOCKER_REGISTRY_ADDR: '127.0.0.1:9',
    });
    expect(result.code).not.toBe(0);
    expect(result.stderr.trim().split('\n')).toEqual([
      `demo: the local Docker engine (unix://${noServices}/docker.sock) or registry (127.0.0.1:9) is not running: run scripts/services.sh start, then npm run demo again`,
    ]);
    await expectDemoCleanedUp();
  }, 60_000);

  it('Ctrl-C during the conversion: the CLI removes what it made, the twin is stopped, nothing stays attached', async () => {
    const result = await demo(['bash', 'scripts/demo.sh'], { AMI2DOCKER_DEMO_DIR: demoDir }, 'Converting the filesystem into an image');
    expect(result.code).toBe(130);
    // The one Ctrl-C reached the CLI, which tore down while the twin was still up to answer, and
    // only then was the twin stopped.
    expect(result.stderr).toMatch(/SIGINT: stopping and removing temporary resources/);
    expect(result.stderr).toMatch(/^ami2docker: .*interrupted by SIGINT.*Temporary resources were removed/m);
    expect(result.stderr).toMatch(/^demo: interrupted \(ami2docker exited 1\); stopping the AWS twin$/m);
    await expectDemoCleanedUp();
  }, 240_000);

  it('converts the sample AMI on the twin, pulls and runs the image, and prints the docker run command', async () => {
    const result = await demo(['npm', 'run', 'demo', '--silent'], { AMI2DOCKER_DEMO_DIR: demoDir });
    expect({ code: result.code, stderr: result.code === 0 ? '' : result.stderr }).toEqual({ code: 0, stderr: '' });
    const image = /^Image +(\S+)$/m.exec(result.stdout)?.[1];
    expect(image).toBe(`${DEMO_IMAGE}:latest`);
    const tags = /^Tags +(.+)$/m.exec(result.stdout)![1]!.split(', ');
    madeImages.push(...tags.filter((t) => t !== 'latest').map((t) => `${DEMO_IMAGE}:${t}`));
    expect(result.stdout).toContain('PRETTY_NAME="ami2docker fixture (gpt-xfs-al2023)"');
    const { stdout: servicesEnv } = await run('scripts/services.sh', ['env'], { cwd: REPO_ROOT, env: { ...process.env, ...SERVICES_ENV } });
    const dockerHost = /^export DOCKER_HOST=(\S+)$/m.exec(servicesEnv)![1];
    expect(result.stdout.trim().split('\n').at(-1)).toBe(`DOCKER_HOST=${dockerHost} docker run --rm -it ${DEMO_IMAGE}:latest`);
    // --pull put it in the local engine, where the printed command finds it.
    const { stdout } = await docker('run', '--rm', '--network', 'none', `${DEMO_IMAGE}:latest`, 'cat', '/etc/os-release');
    expect(stdout).toContain('ID=a2dfixture');
    await expectDemoCleanedUp();
  }, 300_000);
});

// How the built CLI fails against the AWS twin: bad input creates nothing (exit 2); failures after
// provisioning tear everything down (exit 1) with one line naming the step and the next command;
// throttling is ridden out; --keep-on-failure keeps the helper for `ami2docker cleanup`.
// Needs root and `scripts/services.sh start`.
import { describe, it, expect, beforeAll, afterAll, beforeEach } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import type { HistoryEntry } from '../support/twin.js';
import {
  amiSpec, errorLines, expectNoDuplicateCreations, expectNoTemporaryLeftovers, readCheckpoint,
  registryPassword, requireServices, runCliIn, SandboxPool, successfulMutations, TAG_RUN_ID, type CliExit,
  type CliSandbox,
} from '../support/e2e.js';
import { startTwin, type RunningTwin } from '../support/twin.js';

const SUITE = `${Date.now().toString(36)}${randomBytes(2).toString('hex')}`;
const SAMPLE = `e2e-${SUITE}-sample`;
const SHARED_NAME = `e2e-${SUITE}-shared-name`;
const INSTANCE_STORE = `e2e-${SUITE}-instance-store`;
const NO_ROOT = `e2e-${SUITE}-no-root`;
const OWNERS = ['111122223333', '444455556666'];

let twin: RunningTwin;
const sandboxes = new SandboxPool(() => twin);

beforeAll(async () => {
  await requireServices();
  twin = await startTwin({
    timeScale: 0.05,
    amis: [
      await amiSpec(SAMPLE, 'plain-ext4'),
      ...(await Promise.all(OWNERS.map((ownerId) => amiSpec(SHARED_NAME, 'plain-ext4', { ownerId })))),
      { name: INSTANCE_STORE, architecture: 'x86_64', rootDeviceType: 'instance-store' },
      await amiSpec(NO_ROOT, 'no-root'),
    ],
  });
}, 180_000);

afterAll(async () => {
  await twin?.stop();
  await sandboxes.dispose();
});

beforeEach(async () => {
  await twin.control.clearFaults();
});

/** Runs the CLI in a fresh sandbox; also returns what the twin saw change meanwhile. */
async function convert(args: string[]): Promise<CliExit & { calls: HistoryEntry[]; sandbox: CliSandbox }> {
  const sandbox = await sandboxes.make();
  const before = (await twin.control.history()).length;
  const exit = await runCliIn(sandbox, args);
  return { ...exit, calls: (await twin.control.history()).slice(before), sandbox };
}

/** The one error line the CLI printed. */
function oneErrorLine(exit: CliExit): string {
  const lines = errorLines(exit.stderr);
  expect(lines).toHaveLength(1);
  return lines[0]!;
}

function runIdOf(exit: CliExit & { sandbox: CliSandbox }): string {
  const runId = readCheckpoint(exit.sandbox.stateDir)?.runId;
  expect(runId).toBeDefined();
  return runId!;
}

describe('bad input: exit 2, one line, nothing created', () => {
  it('an AMI that does not exist', async () => {
    const missing = `e2e-${SUITE}-missing`;
    const exit = await convert(['--ami-name', missing]);
    expect(exit.code).toBe(2);
    const line = oneErrorLine(exit);
    expect(line).toContain('resolve failed');
    expect(line).toContain(`no AMI named '${missing}'`);
    expect(line).toContain('fix the input and run the command again');
    expect(successfulMutations(exit.calls)).toEqual([]);
    await expectNoTemporaryLeftovers(twin);
  }, 60_000);

  it('a name that matches AMIs of two owners lists both candidates', async () => {
    const exit = await convert(['--ami-name', SHARED_NAME]);
    expect(exit.code).toBe(2);
    const line = oneErrorLine(exit);
    expect(line).toContain('resolve failed');
    expect(line).toContain(`AMI name '${SHARED_NAME}' matches 2 images from different owners`);
    for (const owner of OWNERS) expect(line).toContain(owner);
    expect(line.match(/ami-[0-9a-f]+/g)).toHaveLength(2);
    expect(line).toContain('--ami-owner');
    expect(successfulMutations(exit.calls)).toEqual([]);
  }, 60_000);

  it('an instance-store AMI', async () => {
    const exit = await convert(['--ami-name', INSTANCE_STORE]);
    expect(exit.code).toBe(2);
    const line = oneErrorLine(exit);
    expect(line).toContain('resolve failed');
    expect(line).toMatch(/backed by 'instance-store', not EBS/);
    expect(successfulMutations(exit.calls)).toEqual([]);
  }, 60_000);
});

describe('failures after provisioning: exit 1, one line naming the step, everything temporary removed', () => {
  it('the helper\'s SSM agent never comes online: the message lists the likely causes', async () => {
    await twin.control.fault({ ssmNeverRegisters: true });
    const exit = await convert(['--ami-name', SAMPLE, '--ssm-timeout', '20s']);
    expect(exit.code).toBe(1);
    const line = oneErrorLine(exit);
    expect(line).toMatch(/the SSM agent of instance i-\w+ was not online/);
    expect(line).toContain('Likely causes:');
    expect(line).toContain('no route to the SSM endpoints');
    expect(line).toContain('AmazonSSMManagedInstanceCore');
    expect(line).toContain(`ami2docker status ${runIdOf(exit)}`);
    // It got as far as creating the instance and volume, and removed them.
    expect(exit.calls.some((c) => c.operation === 'RunInstances' && c.created)).toBe(true);
    await expectNoTemporaryLeftovers(twin);
  }, 120_000);

  it('the remote command fails: the message names the script\'s step', async () => {
    await twin.control.fault({ commandFails: { exitCode: 3, stderr: 'AMI2DOCKER_ERROR push: the registry answered 500 Internal Server Error\n', count: 1 } });
    const exit = await convert(['--ami-name', SAMPLE]);
    expect(exit.code).toBe(1);
    const line = oneErrorLine(exit);
    expect(line).toContain("remote conversion failed at step 'push'");
    expect(line).toContain('the registry answered 500 Internal Server Error');
    expect(line).toContain(`ami2docker status ${runIdOf(exit)}`);
    await expectNoTemporaryLeftovers(twin);
  }, 120_000);

  it('a disk with no Linux root: the message names find-root', async () => {
    const exit = await convert(['--ami-name', NO_ROOT]);
    expect(exit.code).toBe(1);
    const line = oneErrorLine(exit);
    expect(line).toContain("remote conversion failed at step 'find-root'");
    expect(line).toContain('no Linux root filesystem (etc/os-release)');
    await expectNoTemporaryLeftovers(twin);
  }, 120_000);
});

describe('throttling', () => {
  it('30% of requests throttled: the conversion still succeeds, creating nothing twice', async () => {
    await twin.control.fault({ throttle: { rate: 0.3 } });
    const exit = await convert(['--ami-name', SAMPLE, '--tag', 'throttled']);
    await twin.control.clearFaults();
    const throttled = exit.calls.filter((c) => ['Throttling', 'ThrottlingException', 'RequestLimitExceeded', 'SlowDown'].includes(c.error ?? '')).length;
    console.log(`throttling: ${throttled} mutating calls throttled during the run`);
    expect({ code: exit.code, errors: errorLines(exit.stderr) }).toEqual({ code: 0, errors: [] });
    expect(exit.stdout).toMatch(/^Digest +sha256:[0-9a-f]{64}$/m);
    expect(throttled).toBeGreaterThan(0);
    const runs = await expectNoDuplicateCreations(twin);
    expect(runs.get(runIdOf(exit))).toMatchObject({ volumes: [expect.any(String)], instances: [expect.any(String)] });
    await expectNoTemporaryLeftovers(twin);
  }, 240_000);
});

describe('--keep-on-failure', () => {
  it('keeps the helper and volume, names the cleanup command, and that cleanup removes them', async () => {
    await twin.control.fault({ commandFails: { exitCode: 1, stderr: 'AMI2DOCKER_ERROR pack: tar: read error\n', count: 1 } });
    const exit = await convert(['--ami-name', SAMPLE, '--keep-on-failure']);
    expect(exit.code).toBe(1);
    const runId = runIdOf(exit);
    const line = oneErrorLine(exit);
    expect(line).toContain("remote conversion failed at step 'pack'");
    expect(line).toContain(`ami2docker cleanup ${runId}`);

    const resources = await twin.control.resources();
    const ofRun = <T extends { tags: Record<string, string> }>(list: T[]) => list.filter((r) => r.tags[TAG_RUN_ID] === runId);
    const [instance] = ofRun(resources.instances);
    const [volume] = ofRun(resources.volumes);
    expect(instance?.state).toBe('running');
    expect(volume?.attachment?.instanceId).toBe(instance!.id);
    expect(line).toContain(instance!.id);
    expect(line).toContain(volume!.id);

    const cleanup = await runCliIn(exit.sandbox, ['cleanup', runId]);
    expect({ code: cleanup.code, errors: errorLines(cleanup.stderr) }).toEqual({ code: 0, errors: [] });
    expect(cleanup.stdout).toMatch(new RegExp(`^Removed .*${instance!.id}`, 'm'));
    await expectNoTemporaryLeftovers(twin);
  }, 180_000);
});

describe('a teardown that cannot finish', () => {
  /** Every DeleteSecurityGroup denied: the run's teardown leaves its security group behind. */
  const SECURITY_GROUP_UNDELETABLE = { error: { operation: 'DeleteSecurityGroup', code: 'UnauthorizedOperation', status: 403, count: 1_000 } };

  it('exits 5 naming what is left and the cleanup command, which then removes it', async () => {
    await twin.control.fault(SECURITY_GROUP_UNDELETABLE);
    const exit = await convert(['--ami-name', SAMPLE, '--tag', 'teardown-stuck']);
    expect(exit.code).toBe(5);
    const runId = runIdOf(exit);
    const [group] = (await twin.control.resources()).securityGroups.filter((g) => g.tags[TAG_RUN_ID] === runId);
    expect(group).toBeDefined();
    const line = oneErrorLine(exit);
    expect(line).toMatch(/^ami2docker: cleanup incomplete: teardown\/security-group/);
    expect(line).toContain(`ami2docker cleanup ${runId}`);
    // The image was made, and everything else of the run is gone.
    expect(exit.stdout).toMatch(/^Digest +sha256:[0-9a-f]{64}$/m);
    const resources = await twin.control.resources();
    expect(resources.instances.filter((i) => i.tags[TAG_RUN_ID] === runId && i.state !== 'terminated')).toEqual([]);
    expect(resources.volumes.filter((v) => v.tags[TAG_RUN_ID] === runId)).toEqual([]);

    await twin.control.clearFaults();
    const cleanup = await runCliIn(exit.sandbox, ['cleanup', runId]);
    expect({ code: cleanup.code, errors: errorLines(cleanup.stderr) }).toEqual({ code: 0, errors: [] });
    expect(cleanup.stdout).toContain(group!.id);
    await expectNoTemporaryLeftovers(twin);
  }, 180_000);

  it('with --json, the result of exit 5 carries the image beside the leftovers', async () => {
    await twin.control.fault(SECURITY_GROUP_UNDELETABLE);
    const exit = await convert(['--ami-name', SAMPLE, '--tag', 'teardown-stuck-json', '--json']);
    expect(exit.code).toBe(5);
    const result = exit.stdout.split('\n').filter((line) => line.startsWith('{')).map((line) => JSON.parse(line) as Record<string, unknown>)
      .find((event) => event.type === 'result');
    expect(result).toMatchObject({
      status: 'cleanupIncomplete',
      exitCode: 5,
      digest: expect.stringMatching(/^sha256:[0-9a-f]{64}$/),
      tags: expect.arrayContaining(['teardown-stuck-json']),
      leftovers: [expect.objectContaining({ step: 'teardown/security-group' })],
    });
    await twin.control.clearFaults();
    expect((await runCliIn(exit.sandbox, ['cleanup', runIdOf(exit)])).code).toBe(0);
    await expectNoTemporaryLeftovers(twin);
  }, 180_000);
});

describe('checkpoints', () => {
  it('no checkpoint written here holds the secret key or a registry password, and all are owner-only', async () => {
    const secrets = [twin.env.AWS_SECRET_ACCESS_KEY!, await registryPassword(twin)];
    const files = await sandboxes.expectCheckpointsKeepSecrets(secrets);
    expect(files).toBeGreaterThan(0);
  });
});

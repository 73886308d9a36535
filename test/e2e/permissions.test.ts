// The built CLI held to IAM policies by the AWS twin: the README's caller policy is enough for a
// whole conversion; without one action the run stops with exit 3, names the action, and removes
// what it had already created. Needs root and `scripts/services.sh start`.
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import {
  amiSpec, errorLines, expectNoDuplicateCreations, expectNoTemporaryLeftovers, readmeCallerPolicy,
  registryPassword, requireServices, runCliIn, SandboxPool, withoutAction,
} from '../support/e2e.js';
import { startTwin, type RunningTwin } from '../support/twin.js';

const SUITE = `${Date.now().toString(36)}${randomBytes(2).toString('hex')}`;
const SAMPLE = `e2e-${SUITE}-policy`;
const POLICY = readmeCallerPolicy();

let twin: RunningTwin;
const sandboxes = new SandboxPool(() => twin);
const sandbox = () => sandboxes.make();

beforeAll(async () => {
  await requireServices();
  twin = await startTwin({ timeScale: 0.05, amis: [await amiSpec(SAMPLE, 'plain-ext4')], policy: POLICY });
}, 120_000);

afterAll(async () => {
  await twin?.stop();
  await sandboxes.dispose();
});

describe('the caller held to an IAM policy', () => {
  it('the README\'s caller policy allows a whole conversion, output bucket included', async () => {
    const exit = await runCliIn(await sandbox(), ['--ami-name', SAMPLE, '--ssm-bucket', `e2e-${SUITE}-output`]);
    expect({ code: exit.code, errors: errorLines(exit.stderr) }).toEqual({ code: 0, errors: [] });
    expect(exit.stdout).toMatch(/^Digest +sha256:[0-9a-f]{64}$/m);
    // The policy was really enforced: something was denied would have shown; prove the twin denies.
    const denials = (await twin.control.history()).filter((c) => c.error === 'UnauthorizedOperation' || c.error === 'AccessDenied' || c.error === 'AccessDeniedException');
    expect(denials).toEqual([]);
    await expectNoTemporaryLeftovers(twin);
    await expectNoDuplicateCreations(twin);
  }, 180_000);

  it('without ec2:RunInstances: exit 3, the message names the action, and the volume and security group are removed', async () => {
    await twin.control.setPolicy(withoutAction(POLICY, 'ec2:RunInstances'));
    try {
      const before = (await twin.control.history()).length;
      const exit = await runCliIn(await sandbox(), ['--ami-name', SAMPLE]);
      const calls = (await twin.control.history()).slice(before);
      expect(exit.code).toBe(3);
      const lines = errorLines(exit.stderr);
      expect(lines).toHaveLength(1);
      expect(lines[0]).toContain('ec2:RunInstances');
      expect(lines[0]).toMatch(/grant ec2:RunInstances to the caller/);
      // The run had created its volume and security group before the denial, and removed both.
      expect(calls.filter((c) => c.operation === 'RunInstances').map((c) => c.error)).toContain('UnauthorizedOperation');
      expect(calls.some((c) => c.operation === 'CreateVolume' && c.created)).toBe(true);
      expect(calls.some((c) => c.operation === 'CreateSecurityGroup' && c.created)).toBe(true);
      await expectNoTemporaryLeftovers(twin);
    } finally {
      await twin.control.setPolicy(POLICY);
    }
  }, 180_000);

  it('no checkpoint written here holds the secret key or a registry password, and all are owner-only', async () => {
    const secrets = [twin.env.AWS_SECRET_ACCESS_KEY!, await registryPassword(twin)];
    const files = await sandboxes.expectCheckpointsKeepSecrets(secrets);
    expect(files).toBeGreaterThan(0);
  });
});

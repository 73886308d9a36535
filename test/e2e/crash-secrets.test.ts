// No checkpoint ever holds a secret: every version written during runs that log in to the registry
// (--pull), are killed and resumed, is read as it is written and searched for the registry
// passwords the CLI handed to docker, a password from the twin's ECR, and the secret access key.
// (The other crash suites run the same audit over every checkpoint they write.)
import { afterAll, describe, expect, it } from '@jest/globals';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { docker, expectCheckpointsKeepSecrets, recordDockerLogins, REGISTRY, type CliSandbox } from '../support/e2e.js';
import { CheckpointAudit, convertArgs, useCrashEnv, killRunAt, outcomeOf, waitForLockRelease } from './crash-support.js';

describe('secrets in checkpoints', () => {
  const env = useCrashEnv('crash-secrets');
  const pulled: string[] = [];

  afterAll(async () => {
    for (const image of pulled) await docker('rmi', image).catch(() => undefined);
  }, 120_000);

  it('the audit finds a secret in a checkpoint version (so its silence below means something)', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'a2d-audit-'));
    try {
      mkdirSync(path.join(dir, 'runs'));
      const audit = new CheckpointAudit(['s3cr3t-value']);
      audit.watch(dir);
      writeFileSync(path.join(dir, 'runs', 'a.json'), JSON.stringify({ note: Buffer.from('s3cr3t-value').toString('base64') }));
      await delay(200);
      writeFileSync(path.join(dir, 'runs', 'a.json'), JSON.stringify({ token: Buffer.from('AWS:abc').toString('base64') }));
      await delay(200);
      audit.close();
      expect(audit.findings()).toEqual(['a.json: secret #0', 'a.json: an ECR authorization token']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('no version of any checkpoint holds a registry password or the secret access key', async () => {
    const image = (tag: string) => `${REGISTRY}/${env().amiName}:${tag}`;
    const recorders: { passwords(): Promise<string[]> }[] = [];
    const recordLogins = async (sandbox: CliSandbox) => void recorders.push(await recordDockerLogins(sandbox));

    const sandbox = await env().sandbox();
    await recordLogins(sandbox);
    const whole = await env().run(convertArgs(env(), 'pulled', ['--pull']), sandbox);
    pulled.push(image('pulled'));
    expect({ code: whole.code, message: outcomeOf(whole).message }).toMatchObject({ code: 0 });

    const killed = await killRunAt(env(), 'working.converting.awaiting', 'resumed', { args: ['--pull'], prepare: recordLogins });
    await waitForLockRelease(killed.sandbox.stateDir, killed.runId);
    const resumed = await env().run(['resume', killed.runId, '--json'], killed.sandbox);
    pulled.push(image('resumed'));
    expect({ code: resumed.code, message: outcomeOf(resumed).message }).toMatchObject({ code: 0 });

    const passwords = (await Promise.all(recorders.map((r) => r.passwords()))).flat();
    // The first run and the resumed one each logged in to the registry.
    expect(passwords.length).toBeGreaterThanOrEqual(2);
    const secrets = [env().twin.env.AWS_SECRET_ACCESS_KEY!, ...passwords];
    expect(env().audit.findings(passwords)).toEqual([]);
    console.log(`${env().audit.count} checkpoint versions read, none holds one of ${secrets.length} secrets or an ECR token`);
    expect(env().audit.count).toBeGreaterThan(10);
    for (const stateDir of [sandbox.stateDir, killed.sandbox.stateDir]) await expectCheckpointsKeepSecrets(stateDir, secrets);
    for (const output of [whole, resumed]) {
      for (const secret of secrets) expect(output.stdout + output.stderr).not.toContain(secret);
    }
  }, 300_000);
});

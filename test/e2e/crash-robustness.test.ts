// Damaged, foreign or busy checkpoints: a truncated file falls back to its previous copy; unreadable
// copies point to `cleanup --orphans`; a newer schema, a run still being driven and another
// account's run are refused before anything in AWS is changed.
import { afterAll, describe, expect, it } from '@jest/globals';
import { readFileSync, writeFileSync } from 'node:fs';
import { readCheckpoint } from '../support/e2e.js';
import { startTwin, type RunningTwin } from '../support/twin.js';
import {
  checkpointPath,
  convertArgs,
  useCrashEnv,
  duplicatesOfRun,
  imageProblem,
  killRunAt,
  leftoversOfRun,
  outcomeOf,
  passed,
  userMutations,
  waitForLockRelease,
  type KilledRun,
} from './crash-support.js';

const CONVERTING = 'working.converting.awaiting';
const OTHER_ACCOUNT = '999999999999';

describe('checkpoint robustness', () => {
  const env = useCrashEnv('crash-robustness');
  let otherAccount: RunningTwin | undefined;

  afterAll(async () => {
    await env().twin.control.clearFaults().catch(() => undefined);
    await otherAccount?.stop();
  }, 120_000);

  /** Runs `ami2docker ARGS` in the killed run's sandbox once its dead process's lock has gone stale. */
  async function afterLock(killed: KilledRun, args: string[], extraEnv: Record<string, string> = {}) {
    await waitForLockRelease(killed.sandbox.stateDir, killed.runId);
    return env().run(args, killed.sandbox, { env: extraEnv });
  }

  const userCallCount = async (twin: RunningTwin) => userMutations(await twin.control.history()).length;

  async function expectCleanedUp(killed: KilledRun): Promise<void> {
    expect(await leftoversOfRun(env().twin, killed.runId)).toEqual([]);
    expect(await duplicatesOfRun(env().twin, killed.runId)).toEqual([]);
  }

  it('resumes from the previous copy when the newest checkpoint is truncated', async () => {
    const killed = await killRunAt(env(), CONVERTING, 'truncated');
    const file = checkpointPath(killed.sandbox, killed.runId);
    const text = readFileSync(file, 'utf8');
    writeFileSync(file, text.slice(0, Math.floor(text.length / 2)));
    const previous = JSON.parse(readFileSync(`${file}.prev`, 'utf8')) as { state: string };

    const resumed = await afterLock(killed, ['resume', killed.runId, '--json']);
    const ended = readCheckpoint(killed.sandbox.stateDir, killed.runId);
    console.log(`truncated at ${killed.checkpoint.state}; resumed from the previous copy at ${previous.state}`);
    expect({ code: resumed.code, final: ended?.final, message: outcomeOf(resumed).message }).toMatchObject({ code: 0, final: 'done' });
    expect(await imageProblem(ended, 'truncated')).toBeUndefined();
    // Going back one step re-ran it: the conversion command must have been found, not sent again.
    await expectCleanedUp(killed);
  }, 180_000);

  it('says to run cleanup --orphans when neither copy is readable, and that finds everything', async () => {
    const killed = await killRunAt(env(), CONVERTING, 'unreadable');
    const file = checkpointPath(killed.sandbox, killed.runId);
    writeFileSync(file, '{"schema": 1, "runId": ');
    writeFileSync(`${file}.prev`, '');

    const refused = await afterLock(killed, ['resume', killed.runId]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('cleanup --orphans');
    const orphans = await env().run(['cleanup', '--orphans', '--older-than', '0s', '--yes'], killed.sandbox);
    expect({ code: orphans.code, output: orphans.stdout + orphans.stderr }).toMatchObject({ code: 0 });
    await expectCleanedUp(killed);
  }, 180_000);

  it('refuses a checkpoint written with a newer schema, changing nothing in AWS', async () => {
    const killed = await killRunAt(env(), CONVERTING, 'schema');
    const file = checkpointPath(killed.sandbox, killed.runId);
    const original = readFileSync(file, 'utf8');
    writeFileSync(file, JSON.stringify({ ...JSON.parse(original), schema: 99 }));
    await waitForLockRelease(killed.sandbox.stateDir, killed.runId);
    const before = await userCallCount(env().twin);

    for (const command of ['resume', 'cleanup']) {
      const refused = await env().run([command, killed.runId], killed.sandbox);
      expect({ command, code: refused.code }).toEqual({ command, code: 2 });
      expect(refused.stderr).toMatch(/newer ami2docker.*schema 99/);
    }
    expect(await userCallCount(env().twin)).toBe(before);

    writeFileSync(file, original);
    const cleaned = await env().run(['cleanup', killed.runId], killed.sandbox);
    expect({ code: cleaned.code, output: cleaned.stderr }).toMatchObject({ code: 0 });
    await expectCleanedUp(killed);
  }, 180_000);

  it('refuses to resume or clean up a run another process is driving', async () => {
    // A helper whose agent never comes online keeps the run waiting, and so holding its lock; once
    // the volume is attached (which does not wait for the agent) the run changes nothing more.
    await env().twin.control.fault({ ssmNeverRegisters: true });
    const sandbox = await env().sandbox();
    const child = env().spawn(convertArgs(env(), 'locked'), sandbox);
    const { runId } = await child.waitForCheckpoint((c) => c.context.resources.attached === true);
    const before = await userCallCount(env().twin);

    for (const command of ['resume', 'cleanup']) {
      const refused = await env().run([command, runId], sandbox);
      expect({ command, code: refused.code }).toEqual({ command, code: 2 });
      expect(refused.stderr).toMatch(new RegExp(`run '${runId}' is being driven by another ami2docker process`));
    }
    expect(await userCallCount(env().twin)).toBe(before);
    expect(passed(readCheckpoint(sandbox.stateDir, runId)!, 'teardown.removingInstance')).toBe(false);

    await env().twin.control.clearFaults();
    const exit = await child.exited;
    const ended = readCheckpoint(sandbox.stateDir, runId);
    expect({ code: exit.code, final: ended?.final, message: outcomeOf(exit).message }).toMatchObject({ code: 0, final: 'done' });
    await expectCleanedUp({ sandbox, runId, checkpoint: ended! });
  }, 180_000);

  it("refuses another account's run before any call that changes something", async () => {
    otherAccount = await startTwin({ account: OTHER_ACCOUNT });
    const killed = await killRunAt(env(), CONVERTING, 'account');
    expect(killed.checkpoint.accountId).not.toBe(OTHER_ACCOUNT);
    await waitForLockRelease(killed.sandbox.stateDir, killed.runId);
    const before = await userCallCount(env().twin);

    for (const command of ['resume', 'cleanup']) {
      const refused = await env().run([command, killed.runId], killed.sandbox, { env: otherAccount.env });
      expect({ command, code: refused.code }).toEqual({ command, code: 2 });
      expect(refused.stderr).toContain(`belongs to account ${killed.checkpoint.accountId}, but the current credentials are for ${OTHER_ACCOUNT}`);
    }
    expect(await otherAccount.control.history()).toEqual([]);
    expect(await userCallCount(env().twin)).toBe(before);

    const cleaned = await env().run(['cleanup', killed.runId], killed.sandbox);
    expect({ code: cleaned.code, output: cleaned.stderr }).toMatchObject({ code: 0 });
    await expectCleanedUp(killed);
  }, 180_000);
});

// Ctrl-C and SIGTERM: the first stops the run and removes what it created (exit 1); a second exits
// at once (exit 4) with a checkpoint that `resume` then runs to its end.
import { describe, expect, it } from '@jest/globals';
import { setTimeout as delay } from 'node:timers/promises';
import { CheckpointStore } from '../../src/effects/checkpoint.js';
import { readCheckpoint } from '../support/e2e.js';
import { convertArgs, useCrashEnv, duplicatesOfRun, leftoversOfRun, outcomeOf, passed } from './crash-support.js';

/** Far enough for every temporary resource to exist: helper, volume attached, security group, run policy. */
const CONVERTING = 'working.converting.awaiting';

describe('signals', () => {
  const env = useCrashEnv('crash-signals');

  it.each(['SIGINT', 'SIGTERM'] as const)('%s once: removes everything the run created and exits 1', async (signal) => {
    const sandbox = await env().sandbox();
    const child = env().spawn(convertArgs(env(), `once-${signal.toLowerCase()}`), sandbox, { killOn: { checkpoint: (c) => passed(c, CONVERTING), signal } });
    const exit = await child.exited;
    const runId = child.runId()!;
    const checkpoint = readCheckpoint(sandbox.stateDir, runId);

    expect({ killed: exit.killed, code: exit.code, final: checkpoint?.final, step: checkpoint?.context.error?.step }).toEqual({ killed: true, code: 1, final: 'failed', step: 'interrupted' });
    expect(outcomeOf(exit).message).toMatch(new RegExp(`interrupted by ${signal}`));
    expect(new CheckpointStore(sandbox.stateDir).isLocked(runId)).toBe(false);
    expect(await leftoversOfRun(env().twin, runId)).toEqual([]);
    expect(await duplicatesOfRun(env().twin, runId)).toEqual([]);
  }, 180_000);

  it('SIGINT twice: exits 4 at once naming resume and cleanup; resume then finishes the teardown it cut short', async () => {
    const sandbox = await env().sandbox();
    const child = env().spawn(convertArgs(env(), 'twice'), sandbox);
    let exited = false;
    void child.exited.then(() => (exited = true));
    const { runId } = await child.waitForCheckpoint((c) => passed(c, CONVERTING));
    child.kill('SIGINT');
    // The second Ctrl-C comes once the first has visibly started the teardown, as a person's would;
    // the first alone must not have ended the process.
    const tearingDown = await child.waitForCheckpoint((c) => c.state.startsWith('teardown'));
    await delay(200);
    expect({ exitedAfterOneSigint: exited }).toEqual({ exitedAfterOneSigint: false });
    child.kill('SIGINT');
    const exit = await child.exited;

    expect(exit.code).toBe(4);
    const message = outcomeOf(exit).message;
    expect(message).toContain(`ami2docker resume ${runId}`);
    expect(message).toContain(`ami2docker cleanup ${runId}`);
    // Exiting at once still releases the run: resume need not wait for a stale lock.
    expect(new CheckpointStore(sandbox.stateDir).isLocked(runId)).toBe(false);
    const saved = readCheckpoint(sandbox.stateDir, runId)!;
    expect(saved.final).toBeUndefined();
    console.log(`second SIGINT at ${tearingDown.state}; checkpoint left at ${saved.state}`);

    const resumed = await env().run(['resume', runId, '--json'], sandbox);
    const ended = readCheckpoint(sandbox.stateDir, runId)!;
    // The run was stopped by its user: resume completes the removal and reports the interruption.
    expect({ code: resumed.code, final: ended.final, step: ended.context.error?.step }).toEqual({ code: 1, final: 'failed', step: 'interrupted' });
    expect(outcomeOf(resumed).message).toMatch(/interrupted by SIGINT/);
    expect(await leftoversOfRun(env().twin, runId)).toEqual([]);
    expect(await duplicatesOfRun(env().twin, runId)).toEqual([]);
  }, 180_000);
});

describe('Ctrl-C at a terminal', () => {
  const env = useCrashEnv('crash-terminal');

  /** Starts a human-mode conversion on a terminal and presses Ctrl-C once everything exists; returns at the question. */
  async function interruptAtTheQuestion(tag: string) {
    const sandbox = await env().sandbox();
    const child = env().spawn(['--ami-name', env().amiName, '--tag', tag], sandbox, { terminal: true });
    const { runId } = await child.waitForCheckpoint((c) => passed(c, CONVERTING));
    child.type('\x03');
    await child.waitForOutput(/Remove what it created now\? .*\[Y\/n\]/);
    // Nothing new starts while the person reads the question.
    const asked = readCheckpoint(sandbox.stateDir, runId)!;
    await delay(1500);
    expect(readCheckpoint(sandbox.stateDir, runId)!.updatedAt).toBe(asked.updatedAt);
    return { sandbox, child, runId };
  }

  it("answering 'n' keeps everything for resume (exit 4), and resume then converts", async () => {
    const { sandbox, child, runId } = await interruptAtTheQuestion('tty-keep');
    child.type('n\r');
    const exit = await child.exited;
    expect(exit.code).toBe(4);
    expect(exit.stdout).toContain(`ami2docker resume ${runId}`);
    expect(readCheckpoint(sandbox.stateDir, runId)!.final).toBeUndefined();
    expect(await leftoversOfRun(env().twin, runId)).not.toEqual([]);

    const resumed = await env().run(['resume', runId, '--json'], sandbox);
    expect({ code: resumed.code, final: readCheckpoint(sandbox.stateDir, runId)!.final }).toEqual({ code: 0, final: 'done' });
    expect(await leftoversOfRun(env().twin, runId)).toEqual([]);
    expect(await duplicatesOfRun(env().twin, runId)).toEqual([]);
  }, 240_000);

  it('pressing Enter removes what the run created and exits 1', async () => {
    const { sandbox, child, runId } = await interruptAtTheQuestion('tty-remove');
    child.type('\r');
    const exit = await child.exited;
    expect(exit.code).toBe(1);
    expect(exit.stdout).toMatch(/^ami2docker: interrupted by SIGINT.*removed/m);
    expect(new CheckpointStore(sandbox.stateDir).isLocked(runId)).toBe(false);
    expect(await leftoversOfRun(env().twin, runId)).toEqual([]);
    expect(await duplicatesOfRun(env().twin, runId)).toEqual([]);
  }, 240_000);

  it('end of input at the question (Ctrl-D) takes the default: removes and exits 1', async () => {
    const { child, runId } = await interruptAtTheQuestion('tty-eof');
    child.type('\x04');
    const exit = await child.exited;
    expect(exit.code).toBe(1);
    expect(exit.stdout).toMatch(/^ami2docker: interrupted by SIGINT.*removed/m);
    expect(await leftoversOfRun(env().twin, runId)).toEqual([]);
  }, 240_000);

  it('a second Ctrl-C at the question exits 4 at once', async () => {
    const { sandbox, child, runId } = await interruptAtTheQuestion('tty-twice');
    child.type('\x03');
    const exit = await child.exited;
    expect(exit.code).toBe(4);
    expect(exit.stdout).toContain(`ami2docker cleanup ${runId}`);
    const cleaned = await env().run(['cleanup', runId, '--json'], sandbox);
    expect(cleaned.code).toBe(0);
    expect(await leftoversOfRun(env().twin, runId)).toEqual([]);
  }, 240_000);
});

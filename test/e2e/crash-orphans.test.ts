// When the CLI and its checkpoint are both gone: `cleanup --orphans` finds what the run left by its
// tags, and even with nothing run at all the helper's dead-man switch terminates it, which deletes
// its volumes.
import { describe, expect, it } from '@jest/globals';
import { DescribeInstancesCommand, EC2Client } from '@aws-sdk/client-ec2';
import { rmSync } from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';
import { LATENCY } from '../twin/latency.js';
import { expectNoTemporaryLeftovers } from '../support/e2e.js';
import type { RunningTwin } from '../support/twin.js';
import {
  checkpointPath,
  useCrashEnv,
  killRunAt,
  leftoversOfRun,
  resourcesOfRun,
  seconds,
  temporaryIds,
  userMutations,
  type KilledRun,
} from './crash-support.js';

/**
 * Slower than the other crash suites: with `--max-runtime 1m` the helper powers off one scaled
 * minute after it boots, and the run must have attached the volume well before that.
 */
const SCALE = 0.3;
const MAX_RUNTIME_SECONDS = 60;

function forgetCheckpoint(killed: KilledRun): void {
  const file = checkpointPath(killed.sandbox, killed.runId);
  rmSync(file);
  rmSync(`${file}.prev`);
}

/** Why the twin ended an instance, as DescribeInstances reports it. */
async function stateReason(twin: RunningTwin, instanceId: string): Promise<string | undefined> {
  const ec2 = new EC2Client({
    region: twin.env.AWS_REGION,
    endpoint: twin.url,
    credentials: { accessKeyId: twin.env.AWS_ACCESS_KEY_ID!, secretAccessKey: twin.env.AWS_SECRET_ACCESS_KEY! },
  });
  try {
    const answer = await ec2.send(new DescribeInstancesCommand({ InstanceIds: [instanceId] }));
    return answer.Reservations?.[0]?.Instances?.[0]?.StateReason?.Code;
  } finally {
    ec2.destroy();
  }
}

describe('runs whose checkpoint is gone', () => {
  const env = useCrashEnv('crash-orphans', { timeScale: SCALE });

  it('cleanup --orphans lists (with --dry-run) and then removes everything of the run', async () => {
    const killed = await killRunAt(env(), 'working.converting.awaiting', 'orphan');
    forgetCheckpoint(killed);
    const left = temporaryIds(resourcesOfRun(await env().twin.control.resources(), killed.runId));
    // The helper, its root volume, the AMI's volume and the security group.
    expect(left.length).toBeGreaterThanOrEqual(4);
    const callsBefore = userMutations(await env().twin.control.history()).length;

    const listed = await env().run(['cleanup', '--orphans', '--older-than', '0s', '--dry-run'], killed.sandbox);
    expect({ code: listed.code, stderr: listed.stderr }).toMatchObject({ code: 0 });
    for (const id of left) expect(listed.stdout).toContain(id);
    expect(listed.stdout).toContain(killed.runId);
    expect(userMutations(await env().twin.control.history()).length).toBe(callsBefore);
    expect(temporaryIds(resourcesOfRun(await env().twin.control.resources(), killed.runId))).toEqual(left);

    // At a terminal it asks, and the default answer removes nothing.
    const asking = env().spawn(['cleanup', '--orphans', '--older-than', '0s'], killed.sandbox, { terminal: true });
    await asking.waitForOutput(/Remove these \d+ resources\? \[y\/N\]/);
    asking.type('\r');
    const declined = await asking.exited;
    expect({ code: declined.code, said: declined.stdout.includes('Nothing removed.') }).toEqual({ code: 0, said: true });
    for (const id of left) expect(declined.stdout).toContain(id);
    expect(userMutations(await env().twin.control.history()).length).toBe(callsBefore);

    // Without a terminal it needs --yes.
    const refused = await env().run(['cleanup', '--orphans', '--older-than', '0s'], killed.sandbox);
    expect({ code: refused.code, stderr: refused.stderr }).toMatchObject({ code: 2, stderr: expect.stringMatching(/pass --yes to remove them/) });

    const removed = await env().run(['cleanup', '--orphans', '--older-than', '0s', '--yes'], killed.sandbox);
    expect({ code: removed.code, stderr: removed.stderr }).toMatchObject({ code: 0 });
    expect(await leftoversOfRun(env().twin, killed.runId)).toEqual([]);
  }, 180_000);

  it('the dead-man switch terminates the helper after --max-runtime, deleting its volumes, with nothing else running', async () => {
    const killed = await killRunAt(env(), 'working.converting.sending', 'deadman', { args: ['--max-runtime', `${MAX_RUNTIME_SECONDS / 60}m`] });
    const killedAt = Date.now();
    const ours = resourcesOfRun(await env().twin.control.resources(), killed.runId);
    const instance = ours.instances[0]!;
    expect({ instances: ours.instances.length, state: instance.state, shutdownBehavior: instance.shutdownBehavior }).toEqual({ instances: 1, state: 'running', shutdownBehavior: 'terminate' });
    expect(ours.volumes.find((v) => !v.root)?.attachment).toMatchObject({ instanceId: instance.id, state: 'attached', deleteOnTermination: true });
    forgetCheckpoint(killed);

    const launched = (await env().twin.control.history()).find((e) => e.operation === 'RunInstances' && e.id === instance.id)!;
    const launchedAt = Date.parse(launched.at);
    // `shutdown -h +1` from the user data: one scaled minute after boot, then the termination.
    const earliest = launchedAt + MAX_RUNTIME_SECONDS * 1000 * SCALE;
    const bound = launchedAt + (LATENCY.instanceBoot + MAX_RUNTIME_SECONDS + LATENCY.terminate) * 1000 * SCALE + 30_000;
    let stoppedAt: number | undefined;
    for (;;) {
      const now = resourcesOfRun(await env().twin.control.resources(), killed.runId);
      const state = now.instances.find((i) => i.id === instance.id)?.state;
      if (state !== 'running') stoppedAt ??= Date.now();
      if (state === 'terminated' && now.volumes.length === 0) break;
      if (Date.now() > bound) throw new Error(`after ${seconds(Date.now() - launchedAt)} the helper is ${state} and ${now.volumes.length} volumes remain`);
      await delay(100);
    }
    console.log(`dead-man switch: launched, killed after ${seconds(killedAt - launchedAt)}, shut down after ${seconds(stoppedAt! - launchedAt)} ` +
      `(--max-runtime ${MAX_RUNTIME_SECONDS} s × ${SCALE} = ${seconds(MAX_RUNTIME_SECONDS * 1000 * SCALE)}), volumes gone after ${seconds(Date.now() - launchedAt)}`);
    expect(stoppedAt!).toBeGreaterThanOrEqual(earliest);
    expect(await stateReason(env().twin, instance.id)).toBe('Client.InstanceInitiatedShutdown');
    // Nothing but the instance itself did it: no call changed anything since the kill.
    expect(userMutations(await env().twin.control.history()).filter((e) => Date.parse(e.at) >= killedAt)).toEqual([]);

    // What costs nothing (security group, run policy) is left for cleanup --orphans.
    const removed = await env().run(['cleanup', '--orphans', '--older-than', '0s', '--yes'], killed.sandbox);
    expect({ code: removed.code, stderr: removed.stderr }).toMatchObject({ code: 0 });
    await expectNoTemporaryLeftovers(env().twin);
  }, 180_000);
});

import { describe, expect, it } from '@jest/globals';
import { createActor, toPromise, waitFor, type SnapshotFrom } from 'xstate';
import { conversionMachine, type ActorName } from '../../../src/machine/conversion.js';
import { awsError, deferred, fakeActors, plan } from './fakes.js';

type Snapshot = SnapshotFrom<typeof conversionMachine>;

function run(overrides: Parameters<typeof fakeActors>[0] = {}, planOverrides: Parameters<typeof plan>[0] = {}) {
  const fakes = fakeActors(overrides);
  const actor = createActor(conversionMachine.provide({ actors: fakes.actors }), { input: { plan: plan(planOverrides) } });
  const persisted: any[] = [];
  // Persist exactly as the CLI does: on every snapshot, and on error.
  actor.subscribe({ next: () => persisted.push(JSON.parse(JSON.stringify(actor.getPersistedSnapshot()))), error: () => {} });
  actor.start();
  return { actor, fakes, persisted, finished: () => waitFor(actor, (s) => s.status === 'done', { timeout: 5000 }) };
}

const TEARDOWN: ActorName[] = ['removeInstance', 'removeVolume', 'removeSecurityGroup', 'removeRunPolicy'];

describe('conversion statechart', () => {
  it('runs the happy path through provisioning, conversion, verification and teardown', async () => {
    const { fakes, finished } = run();
    const final = await finished();
    expect(final.value).toBe('done');
    const names = fakes.names();
    expect(names[0]).toBe('resolve');
    expect(names.indexOf('attachVolume')).toBeGreaterThan(names.indexOf('waitForInstance'));
    expect(names.indexOf('attachVolume')).toBeGreaterThan(names.indexOf('createVolume'));
    expect(names.slice(names.indexOf('attachVolume'))).toEqual([
      'attachVolume', 'waitForAgent', 'sendConversion', 'awaitConversion', 'verifyImage', ...TEARDOWN,
    ]);
    expect(final.context.result?.digest).toBe('sha256:abc');
    expect(final.context.error).toBeUndefined();
    expect(final.context.removed).toContain('instance i-0123456789abcdef0');
    // The AMI id becomes a tag when the user gave none.
    const send = fakes.calls.find((c) => c.name === 'sendConversion')!;
    expect(send.input.spec.tags).toEqual(['latest', 'ami-0123456789abcdef0']);
    expect(send.input.spec.repositoryUri).toBe('123456789012.dkr.ecr.us-east-1.amazonaws.com/web-server-2024');
    expect(send.input.bucket).toBe('my-output');
    expect(Object.keys(final.context.phases)).toEqual(expect.arrayContaining(['resolve', 'provision', 'attach', 'convert', 'verify', 'teardown']));
    for (const phase of Object.values(final.context.phases)) expect(phase?.endedAt).toBeDefined();
  });

  it('starts every provisioning step that has no dependency at once', async () => {
    const volume = deferred();
    const started = new Set<ActorName>();
    const hold = (name: ActorName, answer: unknown) => async () => { started.add(name); return answer; };
    const { actor, fakes } = run({
      createVolume: async () => { started.add('createVolume'); return volume.promise; },
      ensureRepository: hold('ensureRepository', { name: 'r', uri: 'u/r', created: true }),
    });
    // Everything but the volume answers at once; the instance must be launched and booted meanwhile.
    await waitFor(actor, () => fakes.names().includes('waitForInstance'), { timeout: 5000 });
    const beforeVolume = fakes.names();
    expect(beforeVolume).toEqual(expect.arrayContaining(['ensureHelperRole', 'ensureRepository', 'ensureBucket', 'createSecurityGroup', 'createVolume', 'runInstance']));
    expect(beforeVolume).not.toContain('attachVolume');
    volume.resolve({ volumeId: 'vol-0123456789abcdef0' });
    const final = await waitFor(actor, (s) => s.status === 'done', { timeout: 5000 });
    expect(final.value).toBe('done');
  });

  it('launches the instance only once both the profile and the security group exist', async () => {
    const group = deferred();
    const { actor, fakes } = run({ createSecurityGroup: () => group.promise });
    await waitFor(actor, () => fakes.names().includes('ensureHelperRole'), { timeout: 5000 });
    await new Promise((r) => setTimeout(r, 50));
    expect(fakes.names()).not.toContain('runInstance');
    group.resolve({ groupId: 'sg-0123456789abcdef0' });
    await waitFor(actor, (s) => s.status === 'done', { timeout: 5000 });
    const launch = fakes.calls.find((c) => c.name === 'runInstance')!;
    expect(launch.input.securityGroupId).toBe('sg-0123456789abcdef0');
    expect(launch.input.instanceProfileName).toBe('ami2docker-helper');
  });

  it('gives the launch a stable client token and a propagation deadline for the profile retry', async () => {
    const { fakes, finished } = run();
    await finished();
    const launch = fakes.calls.find((c) => c.name === 'runInstance')!;
    expect(launch.input.clientToken).toBe('ami2docker-test-run-instance');
    const seconds = (Date.parse(launch.input.propagationDeadline) - launch.at) / 1000;
    expect(seconds).toBeGreaterThanOrEqual(110);
    expect(seconds).toBeLessThanOrEqual(130);
    expect(fakes.calls.find((c) => c.name === 'createVolume')!.input).toMatchObject({
      clientToken: 'ami2docker-test-run-volume',
      availabilityZone: 'us-east-1b',
      sizeGiB: 8,
      snapshotId: 'snap-0123456789abcdef0',
    });
  });

  it('attaches the volume while the SSM agent registers, and sends the command only once both are done', async () => {
    const agent = deferred();
    const { actor, fakes } = run({ waitForAgent: async () => agent.promise });
    await waitFor(actor, () => fakes.names().includes('waitForAgent') && actor.getSnapshot().context.resources.attached === true, { timeout: 5000 });
    expect(fakes.names()).not.toContain('sendConversion');
    agent.resolve({ instanceId: 'i-0123456789abcdef0' });
    const final = await waitFor(actor, (s) => s.status === 'done', { timeout: 5000 });
    expect(final.value).toBe('done');
    expect(fakes.names().indexOf('sendConversion')).toBeGreaterThan(fakes.names().indexOf('waitForAgent'));
  });

  const failures: [ActorName, string, ActorName[]][] = [
    ['resolve', 'resolve', []],
    ['ensureHelperRole', 'provision/role', ['removeVolume', 'removeSecurityGroup', 'removeRunPolicy']],
    ['createVolume', 'provision/volume', ['removeVolume', 'removeSecurityGroup', 'removeRunPolicy']],
    ['runInstance', 'provision/instance', TEARDOWN],
    ['waitForInstance', 'provision/instance-running', TEARDOWN],
    ['waitForAgent', 'provision/ssm-online', TEARDOWN],
    ['attachVolume', 'attach', TEARDOWN],
    ['awaitConversion', 'convert', TEARDOWN],
    ['verifyImage', 'verify', TEARDOWN],
  ];
  it.each(failures)('a failure in %s reaches teardown and names the step %s', async (name, step, teardown) => {
    const { fakes, finished } = run({ [name]: async () => { throw awsError('SomeAwsError', `${name} broke`); } });
    const final = await finished();
    expect(final.value).toBe('failed');
    expect(final.context.error).toMatchObject({ step, name: 'SomeAwsError', message: `${name} broke`, code: 'SomeAwsError' });
    const ran = fakes.names().filter((n) => (TEARDOWN as string[]).includes(n));
    for (const remover of teardown) expect(ran).toContain(remover);
    if (teardown.length === 0) expect(ran).toEqual([]);
    expect(fakes.names()).not.toContain('pullImage');
  });

  it('keeps everything with --keep-on-failure', async () => {
    const { fakes, finished } = run({ attachVolume: async () => { throw awsError('VolumeInUse', 'busy'); } }, { keepOnFailure: true });
    const final = await finished();
    expect(final.value).toBe('kept');
    expect(fakes.names().filter((n) => (TEARDOWN as string[]).includes(n))).toEqual([]);
    expect(final.context.resources).toMatchObject({ instanceId: 'i-0123456789abcdef0', volumeId: 'vol-0123456789abcdef0' });
  });

  it('goes on tearing down when one removal fails, and reports the leftover', async () => {
    const { fakes, finished } = run({ removeInstance: async () => { throw awsError('UnauthorizedOperation', 'not allowed'); } });
    const final = await finished();
    expect(final.value).toBe('cleanupIncomplete');
    expect(final.context.leftovers).toEqual([expect.objectContaining({ step: 'teardown/instance', name: 'UnauthorizedOperation' })]);
    expect(fakes.names()).toEqual(expect.arrayContaining(['removeVolume', 'removeSecurityGroup', 'removeRunPolicy']));
  });

  it('tears down on INTERRUPT, including resources whose creation was in flight', async () => {
    const launch = deferred();
    const { actor, fakes } = run({ runInstance: () => launch.promise });
    await waitFor(actor, () => fakes.names().includes('runInstance'), { timeout: 5000 });
    actor.send({ type: 'INTERRUPT', reason: 'SIGINT' });
    const final = await waitFor(actor, (s) => s.status === 'done', { timeout: 5000 });
    expect(final.value).toBe('failed');
    expect(final.context.error).toMatchObject({ step: 'interrupted', message: 'SIGINT' });
    // The instance id never arrived, but the intent did: teardown must look it up by token.
    const remove = fakes.calls.find((c) => c.name === 'removeInstance')!;
    expect(remove.input).toMatchObject({ runId: 'test-run', clientToken: 'ami2docker-test-run-instance' });
    expect(remove.input.instanceId).toBeUndefined();
  });

  it('skips the role and its policy when the user names an instance profile', async () => {
    const { fakes, finished } = run({
      resolve: async () => ({ ...(await import('./fakes.js')).resolved, instanceProfile: { name: 'my-profile', create: false } }),
    }, { instanceProfile: 'my-profile' });
    const final = await finished();
    expect(final.value).toBe('done');
    expect(fakes.names()).not.toContain('ensureHelperRole');
    expect(fakes.names()).not.toContain('removeRunPolicy');
    expect(fakes.calls.find((c) => c.name === 'runInstance')!.input.instanceProfileName).toBe('my-profile');
  });

  it('pulls the image after teardown when asked', async () => {
    const { fakes, finished } = run({}, { pull: true });
    const final = await finished();
    expect(final.value).toBe('done');
    expect(fakes.names().at(-1)).toBe('pullImage');
  });

  it('persists a snapshot after every transition holding every id created so far', async () => {
    const { persisted, finished } = run();
    await finished();
    expect(persisted.length).toBeGreaterThan(8);
    const order = ['securityGroupId', 'volumeId', 'instanceId', 'commandId'] as const;
    const seen = new Set<string>();
    for (const snapshot of persisted) {
      for (const key of seen) expect(snapshot.context.resources[key]).toBeDefined();
      for (const key of order) if (snapshot.context.resources[key]) seen.add(key);
      const json = JSON.stringify(snapshot.value);
      if (json.includes('attaching')) expect(snapshot.context.resources).toMatchObject({ instanceId: expect.any(String), volumeId: expect.any(String) });
      if (json.includes('launching')) expect(snapshot.context.intents.instance?.key).toBe('ami2docker-test-run-instance');
    }
    expect([...seen].sort()).toEqual([...order].sort());
  });

  it('restores a persisted snapshot and re-runs the step that was in flight with the same input', async () => {
    const volume = deferred();
    const first = run({ createVolume: () => volume.promise });
    await waitFor(first.actor, () => first.fakes.names().includes('waitForInstance'), { timeout: 5000 });
    const saved = first.persisted.at(-1);
    first.actor.stop();
    const originalInput = first.fakes.calls.find((c) => c.name === 'createVolume')!.input;

    const fakes = fakeActors();
    const resumed = createActor(conversionMachine.provide({ actors: fakes.actors }), { snapshot: saved, input: { plan: saved.context.plan } });
    resumed.start();
    const final: Snapshot = await waitFor(resumed, (s) => s.status === 'done', { timeout: 5000 });
    expect(final.value).toBe('done');
    // Finished steps are not repeated; the one in flight is, with its saved token.
    expect(fakes.names()).not.toContain('resolve');
    expect(fakes.names()).not.toContain('runInstance');
    expect(fakes.calls.find((c) => c.name === 'createVolume')!.input).toEqual(originalInput);
    await toPromise(resumed).catch(() => undefined);
  });

  it('cleans up a kept run from its last context, removing only what it had started', async () => {
    const kept = run({ attachVolume: async () => { throw awsError('VolumeInUse', 'busy'); } }, { keepOnFailure: true });
    const keptFinal = await kept.finished();
    expect(keptFinal.value).toBe('kept');

    const fakes = fakeActors();
    const cleanup = createActor(conversionMachine.provide({ actors: fakes.actors }), { input: { cleanupOf: keptFinal.context } });
    cleanup.start();
    const final = await waitFor(cleanup, (s) => s.status === 'done', { timeout: 5000 });
    expect(final.value).toBe('cleaned');
    expect(fakes.names()).toEqual(TEARDOWN);
    expect(fakes.calls[0]!.input).toMatchObject({ instanceId: 'i-0123456789abcdef0' });
    expect(final.context.error).toMatchObject({ step: 'attach' });
  });

  it('cleans up a run that created nothing without calling AWS', async () => {
    const failed = await run({ resolve: async () => { throw awsError('InputError', 'no such AMI'); } }).finished();
    const fakes = fakeActors();
    const cleanup = createActor(conversionMachine.provide({ actors: fakes.actors }), { input: { cleanupOf: failed.context } });
    cleanup.start();
    const final = await waitFor(cleanup, (s) => s.status === 'done', { timeout: 5000 });
    expect(final.value).toBe('cleaned');
    expect(fakes.names()).toEqual([]);
  });
});

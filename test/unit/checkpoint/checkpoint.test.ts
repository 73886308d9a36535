import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { CheckpointError, CheckpointStore, stateName, type Checkpoint } from '../../../src/effects/checkpoint.js';
import { drive } from '../../../src/effects/driver.js';
import { deferred, fakeActors, plan } from '../machine/fakes.js';

let dir: string;
let store: CheckpointStore;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'a2d-checkpoint-'));
  store = new CheckpointStore(dir);
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function sample(runId = 'run-1', state = 'working.resolving'): Checkpoint {
  const p = { ...plan(), runId };
  return {
    schema: 1, runId, createdAt: p.createdAt, updatedAt: p.createdAt, state, region: p.region,
    context: { plan: p, resources: {}, intents: {}, phases: {}, leftovers: [], removed: [], mode: 'convert' },
    history: [{ at: p.createdAt, state }], snapshot: { status: 'active', value: { working: 'resolving' } },
  };
}

describe('checkpoint store', () => {
  it('writes owner-only files atomically and keeps the previous good copy', () => {
    store.save(sample('run-1', 'working.resolving'));
    store.save(sample('run-1', 'working.provisioning'));
    const path = store.pathOf('run-1');
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(statSync(`${path}.prev`).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, 'runs')).mode & 0o777).toBe(0o700);
    expect(JSON.parse(readFileSync(`${path}.prev`, 'utf8')).state).toBe('working.resolving');
    expect(store.load('run-1').state).toBe('working.provisioning');
  });

  it('falls back to the previous copy when the newest is truncated', () => {
    store.save(sample('run-1', 'working.resolving'));
    store.save(sample('run-1', 'working.provisioning'));
    const path = store.pathOf('run-1');
    writeFileSync(path, readFileSync(path, 'utf8').slice(0, 100));
    expect(store.load('run-1').state).toBe('working.resolving');
  });

  it('says what to run when no copy is readable', () => {
    store.save(sample('run-1'));
    store.save(sample('run-1'));
    writeFileSync(store.pathOf('run-1'), '{');
    writeFileSync(`${store.pathOf('run-1')}.prev`, '');
    expect(() => store.load('run-1')).toThrow(/unreadable.*ami2docker cleanup --orphans/);
    expect(store.list()).toEqual([{ runId: 'run-1', error: expect.stringMatching(/unreadable/) }]);
  });

  it('refuses a checkpoint written by a newer schema', () => {
    store.save({ ...sample('run-1'), schema: 99 });
    expect(() => store.load('run-1')).toThrow(/newer ami2docker.*schema 99/);
  });

  it('names an unknown run', () => {
    expect(() => store.load('nope')).toThrow(CheckpointError);
  });

  it('lets one process drive a run at a time', () => {
    const release = store.lock('run-1');
    expect(() => store.lock('run-1')).toThrow(/another ami2docker process/);
    release();
    store.lock('run-1')();
  });

  it('frees the lock of a process on this machine as soon as it is killed', async () => {
    const checkpointModule = new URL('../../../src/effects/checkpoint.js', import.meta.url).href;
    const script = `import { CheckpointStore } from ${JSON.stringify(checkpointModule)}; new CheckpointStore(${JSON.stringify(dir)}).lock('run-2'); console.log('locked'); setInterval(() => {}, 1000);`;
    store.save(sample('run-2'));
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve) => child.stdout!.on('data', () => resolve()));
    expect(store.isLocked('run-2')).toBe(true);
    expect(() => store.lock('run-2')).toThrow(/another ami2docker process/);
    const exited = new Promise((resolve) => child.on('exit', resolve));
    child.kill('SIGKILL');
    await exited;
    expect(store.isLocked('run-2')).toBe(false);
    store.lock('run-2')();
  });

  it('takes over the lock of a holder elsewhere only once it has gone unrefreshed', () => {
    const lockDir = `${store.pathOf('run-3')}.lock`;
    mkdirSync(lockDir, { recursive: true });
    writeFileSync(join(lockDir, 'owner'), JSON.stringify({ host: 'another-machine', pid: process.pid }));
    expect(() => store.lock('run-3', 5)).toThrow(/another ami2docker process/);
    const longAgo = new Date(Date.now() - 6000);
    utimesSync(lockDir, longAgo, longAgo);
    expect(store.isLocked('run-3', 5)).toBe(false);
    const release = store.lock('run-3', 5);
    expect(JSON.parse(readFileSync(join(lockDir, 'owner'), 'utf8'))).toEqual({ host: hostname(), pid: process.pid });
    release();
    expect(existsSync(lockDir)).toBe(false);
  });

  it('releasing a lock that another process took over leaves that one alone', () => {
    const release = store.lock('run-4');
    const lockDir = `${store.pathOf('run-4')}.lock`;
    writeFileSync(join(lockDir, 'owner'), JSON.stringify({ host: 'another-machine', pid: 1 }));
    release();
    expect(existsSync(lockDir)).toBe(true);
  });

  it('flattens state values into readable names', () => {
    expect(stateName({ working: 'resolving' })).toBe('working.resolving');
    expect(stateName({ working: { provisioning: { role: 'ensuring', volume: 'creating' } } })).toBe('working.provisioning');
    expect(stateName('done')).toBe('done');
  });
});

describe('driving a run', () => {
  it('persists after every transition and finishes with the lock released', async () => {
    const fakes = fakeActors();
    const states: string[] = [];
    const run = drive({ store, actors: fakes.actors, from: { plan: plan() }, onTransition: (c) => states.push(c.state) });
    const { final, checkpoint } = await run.finished;
    expect(final).toBe('done');
    expect(states).toEqual(expect.arrayContaining(['working.resolving', 'working.provisioning', 'working.attaching', 'teardown.removingInstance', 'done']));
    const onDisk = store.load('test-run');
    expect(onDisk.final).toBe('done');
    expect(onDisk.history.map((h) => h.state)).toEqual(checkpoint.history.map((h) => h.state));
    expect(onDisk.history.length).toBeGreaterThan(6);
    expect(onDisk.context.resources.instanceId).toBe('i-0123456789abcdef0');
    expect(onDisk.accountId).toBe('123456789012');
    expect(existsSync(`${store.pathOf('test-run')}.lock`)).toBe(false);
  });

  it('resumes from the file a stopped process left, re-running only the step in flight', async () => {
    const attach = deferred();
    const first = fakeActors({ attachVolume: () => attach.promise });
    const run = drive({ store, actors: first.actors, from: { plan: plan() } });
    await new Promise<void>((resolve) => { const t = setInterval(() => { if (first.names().includes('attachVolume')) { clearInterval(t); resolve(); } }, 5); });
    run.abandon();
    const saved = store.load('test-run');
    expect(saved.state).toBe('working.attaching');

    const second = fakeActors();
    const resumed = drive({ store, actors: second.actors, from: { checkpoint: saved } });
    const { final } = await resumed.finished;
    expect(final).toBe('done');
    expect(second.names()[0]).toBe('attachVolume');
    expect(second.names()).not.toContain('runInstance');
    expect(store.load('test-run').history.map((h) => h.state)).toEqual(expect.arrayContaining(['working.attaching', 'done']));
  });
});

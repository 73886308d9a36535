// list, status, resume of a finished run, and cleanup --all, with the caller held to the README's
// policy: --all removes the reusable role, profile, repository and bucket a run created, and never
// what it only used. Needs root and `scripts/services.sh start`.
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { CreateRepositoryCommand, ECRClient } from '@aws-sdk/client-ecr';
import { HELPER_ROLE_NAME } from '../../src/machine/names.js';
import { amiSpec, cliSandbox, readmeCallerPolicy, requireServices, runCliIn, successfulMutations, twinClient, type CliExit, type CliSandbox } from '../support/e2e.js';
import { startTwin, type RunningTwin } from '../support/twin.js';

const SUITE = `${Date.now().toString(36)}${randomBytes(2).toString('hex')}`;
const SAMPLE = `e2e-${SUITE}-runs`;
const BUCKET = `e2e-${SUITE}-output`;
const USER_REPOSITORY = `e2e-${SUITE}-not-ours`;

let twin: RunningTwin;
let sandbox: CliSandbox;

beforeAll(async () => {
  await requireServices();
  twin = await startTwin({ timeScale: 0.05, amis: [await amiSpec(SAMPLE, 'plain-ext4')], policy: readmeCallerPolicy() });
  sandbox = await cliSandbox(twin);
}, 120_000);

afterAll(async () => {
  await twin?.stop();
  await sandbox?.dispose();
});

/** The final `result` object of a --json run. */
function resultOf(exit: CliExit): Record<string, unknown> {
  const last = exit.stdout.trim().split('\n').at(-1)!;
  return JSON.parse(last) as Record<string, unknown>;
}

async function json(args: string[]): Promise<Record<string, unknown>> {
  const exit = await runCliIn(sandbox, [...args, '--json']);
  expect({ args, code: exit.code, stderr: exit.stderr }).toMatchObject({ args, code: 0 });
  return resultOf(exit);
}

const mutationCount = async () => successfulMutations(await twin.control.history()).length;

describe('runs on this machine', () => {
  let created: string; // the run that created the role, profile, repository and bucket
  let reused: string; // a later run that only used the role, and pushed to a repository it did not create

  it('two conversions: the first creates the reusable resources, the second reuses the role and takes a given repository', async () => {
    const ecr = twinClient(twin, ECRClient);
    await ecr.send(new CreateRepositoryCommand({ repositoryName: USER_REPOSITORY }));
    ecr.destroy();

    created = (await json(['--ami-name', SAMPLE, '--ssm-bucket', BUCKET])).runId as string;
    reused = (await json(['--ami-name', SAMPLE, '--ecr-registry', USER_REPOSITORY, '--tag', 'second'])).runId as string;
    const resources = await twin.control.resources();
    expect(resources.roles.map((r) => r.name)).toContain(HELPER_ROLE_NAME);
    expect(resources.buckets.map((b) => b.name)).toContain(BUCKET);
  }, 240_000);

  it('list shows both runs done, with their image and no live resources', async () => {
    const { runs } = (await json(['list'])) as { runs: Record<string, unknown>[] };
    expect(runs.map((r) => r.runId)).toEqual([created, reused]);
    for (const run of runs) expect(run).toMatchObject({ state: 'done', liveResources: [], image: expect.stringMatching(/@sha256:[0-9a-f]{64}$/) });
    expect(String(runs[1]!.image)).toContain(`/${USER_REPOSITORY}@`);

    const forPeople = await runCliIn(sandbox, ['list']);
    expect(forPeople.code).toBe(0);
    for (const id of [created, reused]) expect(forPeople.stdout).toMatch(new RegExp(`^${id} +done `, 'm'));
  });

  it('status shows the phases and the history of one run, and that nothing drives it', async () => {
    const status = await json(['status', created]);
    expect(status).toMatchObject({ runId: created, state: 'done', live: false, liveResources: [] });
    expect(Object.keys(status.phases as object)).toEqual(expect.arrayContaining(['resolve', 'provision', 'attach', 'convert', 'verify', 'teardown']));
    expect((status.history as { state: string }[]).at(-1)!.state).toBe('done');

    const unknown = await runCliIn(sandbox, ['status', '20200101-000000-0000']);
    expect({ code: unknown.code, stderr: unknown.stderr.trim() }).toMatchObject({ code: 2, stderr: expect.stringMatching(/^ami2docker: no run '20200101-000000-0000'.*ami2docker list/) });
  });

  it('resume of a finished run reports it and changes nothing; resume without an id says there is nothing to resume', async () => {
    const before = await mutationCount();
    const resumed = await runCliIn(sandbox, ['resume', created]);
    expect({ code: resumed.code, out: resumed.stdout }).toMatchObject({ code: 0, out: expect.stringContaining(`Run ${created} already ended (done); nothing to resume.`) });
    const nothing = await runCliIn(sandbox, ['resume']);
    expect({ code: nothing.code, stderr: nothing.stderr }).toMatchObject({ code: 2, stderr: expect.stringMatching(/no unfinished run to resume/) });
    expect(await mutationCount()).toBe(before);
  });

  it('cleanup --all of the run that only used them keeps the role and the given repository', async () => {
    const outcome = await json(['cleanup', reused, '--all']);
    expect((outcome.reusable as { removed: string[] }).removed).toEqual([]);
    const resources = await twin.control.resources();
    expect(resources.roles.map((r) => r.name)).toContain(HELPER_ROLE_NAME);
    expect(resources.repositories.map((r) => r.name)).toContain(USER_REPOSITORY);
  }, 120_000);

  it('cleanup --all of the run that created them removes role, profile, repository and bucket, and nothing else', async () => {
    const outcome = await json(['cleanup', created, '--all']);
    expect((outcome.reusable as { removed: string[] }).removed).toHaveLength(4);
    const resources = await twin.control.resources();
    expect(resources.roles).toEqual([]);
    expect(resources.instanceProfiles).toEqual([]);
    expect(resources.buckets).toEqual([]);
    expect(resources.repositories.map((r) => r.name)).toEqual([USER_REPOSITORY]);
  }, 120_000);
});

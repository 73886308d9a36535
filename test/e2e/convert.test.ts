// The built CLI converts AMIs end to end against the AWS twin: every root disk layout, the image
// run by the real Docker engine and compared file by file with the disk; --json, --pull, --dry-run.
// Needs root and `scripts/services.sh start`.
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DescribeImagesCommand as DescribeAmisCommand, EC2Client } from '@aws-sdk/client-ec2';
import { DescribeImagesCommand, ECRClient } from '@aws-sdk/client-ecr';
import { mountRootReadOnly, ROOT_LAYOUTS, ROOT_PARTITION } from '../fixtures/disk.js';
import { extractImage } from '../fixtures/image.js';
import { compareTrees, snapshotTree } from '../fixtures/manifest.js';
import {
  amiSpec, diskImage, docker, expectNoDuplicateCreations, expectNoTemporaryLeftovers, recordDockerLogins,
  REGISTRY, registryPassword, requireServices, runCliIn, SandboxPool, successfulMutations, twinClient,
  type CliExit,
} from '../support/e2e.js';
import { startTwin, type RunningTwin } from '../support/twin.js';

type RootLayout = (typeof ROOT_LAYOUTS)[number];

const SUITE = `${Date.now().toString(36)}${randomBytes(2).toString('hex')}`;
const amiName = (layout: RootLayout) => `e2e-${SUITE}-${layout}`;
/** The run that reports in --json, and the one that pulls with --pull (the others print for people). */
const JSON_LAYOUT: RootLayout = 'gpt-xfs-al2023';
const PULL_LAYOUT: RootLayout = 'mbr-rhel';

let twin: RunningTwin;
let ecr: ECRClient;
let ec2: EC2Client;
const sandboxes = new SandboxPool(() => twin);
const localImages: string[] = [];
const passwordsSeen: string[] = [];

const sandbox = () => sandboxes.make();

beforeAll(async () => {
  await requireServices();
  // One after the other: building disks in parallel only fights over the two cores.
  const amis = [];
  for (const layout of ROOT_LAYOUTS) amis.push(await amiSpec(amiName(layout), layout));
  twin = await startTwin({ amis, timeScale: 0.05 });
  ecr = twinClient(twin, ECRClient);
  ec2 = twinClient(twin, EC2Client);
}, 300_000);

afterAll(async () => {
  ecr?.destroy();
  ec2?.destroy();
  for (const image of localImages) await docker('rmi', '-f', image).catch(() => undefined);
  await twin?.stop();
  await sandboxes.dispose();
});

interface Converted { imageUri: string; digest: string; pullRef: string; tags: string[] }

/** What the CLI reported: from the --json result object, or from the lines printed for people. */
function reported(exit: CliExit, json: boolean): Converted {
  if (json) {
    const events = exit.stdout.trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
    const result = events.at(-1)!;
    expect(result).toMatchObject({ type: 'result', status: 'done', exitCode: 0 });
    return { imageUri: result.imageUri as string, digest: result.digest as string, pullRef: result.image as string, tags: result.tags as string[] };
  }
  const field = (label: string) => new RegExp(`^${label} +(.+)$`, 'm').exec(exit.stdout)?.[1];
  const pullRef = field('Image')!;
  const digest = field('Digest')!;
  expect(exit.stdout).toContain(`docker run --rm -it ${pullRef}`);
  return { imageUri: `${pullRef.replace(/:[^:/]+$/, '')}@${digest}`, digest, pullRef, tags: field('Tags')!.split(', ') };
}

async function amiIdOf(name: string): Promise<string> {
  const answer = await ec2.send(new DescribeAmisCommand({ Filters: [{ Name: 'name', Values: [name] }] }));
  expect(answer.Images).toHaveLength(1);
  return answer.Images![0]!.ImageId!;
}

/** The image's tree (unpacked from the registry) against the disk's root filesystem. */
async function compareWithDisk(layout: RootLayout, repository: string, digest: string): Promise<number> {
  const unpacked = await mkdtemp(path.join(tmpdir(), 'a2d-e2e-image-'));
  const mounted = await mountRootReadOnly(await diskImage(layout), ROOT_PARTITION[layout]);
  try {
    await extractImage(REGISTRY, repository, digest, unpacked);
    const comparison = compareTrees(await snapshotTree(mounted.root), await snapshotTree(unpacked));
    console.log(`${layout}: ${comparison.compared} entries compared between the AMI's disk and the image`);
    expect(comparison.differences).toEqual([]);
    return comparison.compared;
  } finally {
    await mounted.release();
    await rm(unpacked, { recursive: true, force: true });
  }
}

describe('ami2docker converts an AMI end to end', () => {
  for (const layout of ROOT_LAYOUTS) {
    const json = layout === JSON_LAYOUT;
    const pull = layout === PULL_LAYOUT;
    it(`${layout}${json ? ' (--json)' : ''}${pull ? ' (--pull)' : ''}: exit 0, image in ECR with both tags, runs, same tree as the disk, nothing left`, async () => {
      const s = await sandbox();
      const logins = pull ? await recordDockerLogins(s) : undefined;
      const args = ['--ami-name', amiName(layout), ...(json ? ['--json'] : []), ...(pull ? ['--pull'] : [])];
      const exit = await runCliIn(s, args);
      expect({ code: exit.code, stderr: exit.code === 0 ? '' : exit.stderr }).toEqual({ code: 0, stderr: '' });

      const image = reported(exit, json);
      const amiId = await amiIdOf(amiName(layout));
      const repository = amiName(layout);
      expect(image.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
      expect(image.imageUri).toBe(`${REGISTRY}/${repository}@${image.digest}`);
      expect(image.pullRef).toBe(`${REGISTRY}/${repository}:latest`);
      expect(image.tags).toEqual(['latest', amiId]);

      const listed = await ecr.send(new DescribeImagesCommand({ repositoryName: repository }));
      const detail = listed.imageDetails?.find((d) => d.imageDigest === image.digest);
      expect(detail?.imageTags?.sort()).toEqual(['latest', amiId].sort());

      await expectNoTemporaryLeftovers(twin);
      await expectNoDuplicateCreations(twin);

      if (pull) {
        // The CLI itself put the image in the local engine, logging in with ECR's password on stdin.
        const { stdout } = await docker('image', 'inspect', '--format', '{{json .RepoDigests}}', image.pullRef);
        expect(JSON.parse(stdout)).toContain(image.imageUri);
        passwordsSeen.push(...(await logins!.passwords()));
        expect(passwordsSeen.length).toBeGreaterThan(0);
        localImages.push(image.pullRef);
      } else {
        await docker('pull', '-q', image.imageUri);
        localImages.push(image.imageUri);
      }
      const { stdout: osRelease } = await docker('run', '--rm', '--network', 'none', pull ? image.pullRef : image.imageUri, 'cat', '/etc/os-release');
      expect(osRelease).toContain(`PRETTY_NAME="ami2docker fixture (${layout})"`);

      expect(await compareWithDisk(layout, repository, image.digest)).toBeGreaterThan(300);
    }, 240_000);
  }

  it('--dry-run prints the plan and creates nothing', async () => {
    const s = await sandbox();
    const before = (await twin.control.history()).length;
    const exit = await runCliIn(s, ['--ami-name', amiName('plain-ext4'), '--dry-run', '--ssm-bucket', `e2e-${SUITE}-dry-run`]);
    expect({ code: exit.code, errors: exit.stderr.split('\n').filter((line) => line.startsWith('ami2docker:')) }).toEqual({ code: 0, errors: [] });
    const amiId = await amiIdOf(amiName('plain-ext4'));
    expect(exit.stdout).toContain(`AMI        ${amiId} '${amiName('plain-ext4')}'`);
    expect(exit.stdout).toMatch(/^Subnet +subnet-\w+ in vpc-\w+, us-east-1[a-z]$/m);
    expect(exit.stdout).toContain(`Tags       latest, ${amiId}`);
    expect(exit.stdout).toContain('Dry run: nothing was created.');
    const calls = (await twin.control.history()).slice(before);
    expect(successfulMutations(calls)).toEqual([]);
    await expectNoTemporaryLeftovers(twin, 0);
  }, 60_000);

  it('no checkpoint written here holds the secret key or a registry password, and all are owner-only', async () => {
    const secrets = [twin.env.AWS_SECRET_ACCESS_KEY!, await registryPassword(twin), ...passwordsSeen];
    const files = await sandboxes.expectCheckpointsKeepSecrets(secrets);
    expect(files).toBeGreaterThanOrEqual(ROOT_LAYOUTS.length);
  });
});

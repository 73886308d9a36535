import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetAuthorizationTokenCommand } from '@aws-sdk/client-ecr';
import { pullImage } from '../../../src/effects/registry.js';
import { mocks, resetAll, restoreAll, testContext } from './helpers.js';

const m = mocks();
const PASSWORD = 's3cr3t-Token/with+chars==';
const IMAGE = 'registry.example/team/web@sha256:feed';
let dir: string;
const saved = { PATH: process.env.PATH, A2D_FAKE_DOCKER_LOG: process.env.A2D_FAKE_DOCKER_LOG };

// A stand-in `docker` that records its arguments and standard input, so the test sees exactly what
// a real docker would have been given.
const FAKE_DOCKER = `#!/bin/sh
printf '%s\\n' "$*" >>"$A2D_FAKE_DOCKER_LOG/argv"
cat >"$A2D_FAKE_DOCKER_LOG/stdin.$1"
echo "fake $1 done"
if [ "$1" = pull ] && [ -e "$A2D_FAKE_DOCKER_LOG/fail-pull" ]; then echo "Error response from daemon: manifest unknown" >&2; exit 1; fi
`;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'a2d-pull-'));
  writeFileSync(join(dir, 'docker'), FAKE_DOCKER);
  chmodSync(join(dir, 'docker'), 0o755);
  process.env.PATH = `${dir}:${process.env.PATH}`;
  process.env.A2D_FAKE_DOCKER_LOG = dir;
});
afterAll(() => {
  restoreAll(m);
  process.env.PATH = saved.PATH;
  if (saved.A2D_FAKE_DOCKER_LOG === undefined) delete process.env.A2D_FAKE_DOCKER_LOG;
  else process.env.A2D_FAKE_DOCKER_LOG = saved.A2D_FAKE_DOCKER_LOG;
  rmSync(dir, { recursive: true, force: true });
});
beforeEach(() => {
  resetAll(m);
  rmSync(join(dir, 'argv'), { force: true });
  rmSync(join(dir, 'fail-pull'), { force: true });
  m.ecr.on(GetAuthorizationTokenCommand).resolves({
    authorizationData: [{ authorizationToken: Buffer.from(`AWS:${PASSWORD}`).toString('base64'), proxyEndpoint: 'https://registry.example' }],
  });
});

describe('pullImage', () => {
  it('logs in to the endpoint ECR names with the password on stdin only, pulls by digest, then tags', async () => {
    const ctx = testContext();
    expect(await pullImage({ imageUri: IMAGE, tags: ['latest', 'v1'], region: 'eu-west-1' }, ctx)).toEqual({ pulled: IMAGE });
    const argv = readFileSync(join(dir, 'argv'), 'utf8');
    expect(argv).toBe(
      `login --username AWS --password-stdin https://registry.example\npull ${IMAGE}\n` +
        `tag ${IMAGE} registry.example/team/web:latest\ntag ${IMAGE} registry.example/team/web:v1\n`,
    );
    expect(readFileSync(join(dir, 'stdin.login'), 'utf8')).toBe(PASSWORD);
    expect(readFileSync(join(dir, 'stdin.pull'), 'utf8')).toBe('');
    expect(ctx.reports.map((r) => r.message)).toEqual(['fake login done', 'fake pull done', 'fake tag done', 'fake tag done']);
    expect(JSON.stringify(ctx.reports)).not.toContain(PASSWORD);
  });

  it("fails with docker's message when the pull fails", async () => {
    writeFileSync(join(dir, 'fail-pull'), '');
    await expect(pullImage({ imageUri: IMAGE, tags: ['latest'], region: 'eu-west-1' }, testContext())).rejects.toThrow(/docker pull failed \(exit 1\): Error response from daemon: manifest unknown/);
  });
});

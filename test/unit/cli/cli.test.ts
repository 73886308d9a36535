import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { mkdtempSync, readdirSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { convertOptions, globalOptions } from '../../../src/cli/options.js';
import { runCli } from '../../support/cli.js';

// Each case starts the CLI as a process: on a busy machine that alone can take seconds.
jest.setTimeout(60_000);

// Any AWS call the CLI makes lands here: bad input must make none.
let server: Server;
let requests: string[] = [];
let endpoint: string;
let home: string;
let env: NodeJS.ProcessEnv;

beforeAll(async () => {
  server = createServer((req, res) => {
    requests.push(`${req.method} ${req.url} ${req.headers.authorization ?? ''}`);
    res.statusCode = 500;
    res.end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  endpoint = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  home = mkdtempSync(join(tmpdir(), 'a2d-cli-'));
  env = {
    AWS_ENDPOINT_URL: endpoint, AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE', AWS_SECRET_ACCESS_KEY: 'secret', AWS_REGION: 'us-east-1',
    AWS_EC2_METADATA_DISABLED: 'true', AWS_MAX_ATTEMPTS: '1', HOME: home, XDG_CONFIG_HOME: join(home, 'config'), AMI2DOCKER_STATE_DIR: join(home, 'state'),
  };
});
afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
  rmSync(home, { recursive: true, force: true });
});

describe('ami2docker --help', () => {
  it('lists every option with its default, an example and the exit codes', async () => {
    const { code, stdout } = await runCli(['--help'], env);
    expect(code).toBe(0);
    for (const name of [...Object.keys(convertOptions), ...Object.keys(globalOptions)]) expect(stdout).toContain(`--${name}`);
    expect(stdout).toMatch(/--max-runtime[\s\S]*\[default: "60m"\]/);
    expect(stdout).toMatch(/--compression[\s\S]*\[default: "gzip"\]/);
    expect(stdout).toContain('Examples:');
    expect(stdout).toMatch(/Exit codes: 0 done; 1 .*; 2 usage/);
  });

  it('also answers as `convert --help`', async () => {
    const { code, stdout } = await runCli(['convert', '--help'], env);
    expect(code).toBe(0);
    expect(stdout).toContain('--ami-name');
  });
});

describe('bad input', () => {
  const cases: [string, string[], RegExp][] = [
    ['no AMI', ['--region', 'us-east-1'], /no AMI given: pass --ami-name/],
    ['both AMI flags', ['--ami-name', 'a', '--ami-id', 'ami-0123456789abcdef0'], /pass only one/],
    ['a malformed AMI id', ['--ami-id', 'ami-xyz'], /is not an AMI id/],
    ['an unknown flag', ['--ami-name', 'a', '--frobnicate'], /Unknown argument: frobnicate/],
    ['a bad compression', ['--ami-name', 'a', '--compression', 'lz4'], /Invalid values|compression/],
    ['a bad duration', ['--ami-name', 'a', '--max-runtime', 'soon'], /--max-runtime 'soon' is not a duration/],
    ['a too short runtime', ['--ami-name', 'a', '--max-runtime', '10s'], /between 1m and 24h/],
    ['a bad tag', ['--ami-name', 'a', '--tag', 'no spaces'], /is not a valid image tag/],
    ['a bad change', ['--ami-name', 'a', '--change', 'RUN rm -rf /'], /not an instruction docker import accepts/],
    ['a relative exclude', ['--ami-name', 'a', '--exclude', 'var/log'], /must be an absolute path/],
    ['a bad subnet', ['--ami-name', 'a', '--subnet-id', 'net-1'], /is not a subnet id/],
    ['a bad owner', ['--ami-name', 'a', '--ami-owner', 'somebody'], /--ami-owner 'somebody'/],
    ['a bad region', ['--ami-name', 'a', '--region', 'mars'], /is not an AWS region/],
    ['conflicting helper AMI flags', ['--ami-name', 'a', '--instance-ami-name', 'x', '--instance-ami-id', 'ami-0123456789abcdef0'], /conflict/],
  ];
  it.each(cases)('%s: exit 2, one line, no stack, no AWS call, no checkpoint', async (_what, args, message) => {
    requests = [];
    const { code, stdout, stderr } = await runCli(args, env);
    expect(code).toBe(2);
    expect(stderr).toMatch(message);
    expect(stderr.trim().split('\n')).toHaveLength(1);
    expect(stderr).toMatch(/^ami2docker: /);
    expect(stderr).not.toMatch(/\bat .*\.js:\d+/);
    expect(stdout).toBe('');
    expect(requests).toEqual([]);
    expect(existsSync(join(home, 'state', 'runs')) ? readdirSync(join(home, 'state', 'runs')) : []).toEqual([]);
  });

  it('reports bad input as a JSON error object with --json', async () => {
    const { code, stdout, stderr } = await runCli(['--json', '--ami-id', 'nope'], env);
    expect(code).toBe(2);
    expect(stderr).toBe('');
    const event = JSON.parse(stdout.trim());
    expect(event).toMatchObject({ type: 'error', exitCode: 2, message: expect.stringMatching(/is not an AMI id/) });
  });

  it('names a broken settings file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'a2d-cfg-'));
    writeFileSync(join(dir, '.ami2docker.json'), '{ broken');
    const result = await runCli(['--ami-name', 'a'], env, { cwd: dir });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/\.ami2docker\.json is not valid JSON/);
    expect(requests).toEqual([]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('takes defaults from .ami2docker.json below the flags', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'a2d-cfg-'));
    writeFileSync(join(dir, '.ami2docker.json'), JSON.stringify({ 'max-runtime': 'never' }));
    const fromFile = await runCli(['--ami-name', 'a'], env, { cwd: dir });
    expect(fromFile.code).toBe(2);
    expect(fromFile.stderr).toMatch(/--max-runtime 'never'/);
    writeFileSync(join(dir, '.ami2docker.json'), JSON.stringify({ 'max-runtime': '90m', tag: ['bad tag'] }));
    const flagWins = await runCli(['--ami-name', 'a', '--tag', 'v1', '--max-runtime', '5s'], env, { cwd: dir });
    expect(flagWins.stderr).toMatch(/between 1m and 24h \(got 5s\)/);
    writeFileSync(join(dir, '.ami2docker.json'), JSON.stringify({ 'instance-tpye': 'x' }));
    const unknown = await runCli(['--ami-name', 'a'], env, { cwd: dir });
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/unknown option 'instance-tpye'/);
    rmSync(dir, { recursive: true, force: true });
  });
});

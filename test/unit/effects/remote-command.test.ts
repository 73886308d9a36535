import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { gunzipSync } from 'node:zlib';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { conversionEnvironment, loadConversionScript, renderConversionCommand } from '../../../src/effects/remote-command.js';
import type { ConversionSpec } from '../../../src/machine/types.js';

const HOSTILE = `it's "quoted" $(touch pwned) \`touch pwned2\` $HOME \\ ; rm -rf / #`;

const spec: ConversionSpec = {
  volumeId: 'vol-0123456789abcdef0',
  device: '/dev/sdf',
  repositoryUri: 'registry.example:5000/team/web',
  tags: ['latest', 'ami-0abc'],
  architecture: 'arm64',
  region: 'eu-west-1',
  ami: { id: 'ami-0abc', name: HOSTILE, creationDate: '2025-10-01T10:00:00.000Z' },
  changes: ['CMD ["/bin/sh", "-c", "echo \'hi\'"]', `ENV GREETING="hello $(whoami)"`, 'LABEL multi="line\nvalue"'],
  excludes: ['/var/cache/*', "/home/o'brien", '/tmp/$(id)'],
  compression: 'zstd',
};

/** Prints every A2D_ variable NUL-separated, checks stdin is empty, and exits 7. */
const ENV_DUMP_SCRIPT = [
  '#!/bin/bash',
  '# a script with everything a heredoc could trip over: $HOME `id` \'quotes\' "double" \\',
  'if read -r line; then echo "stdin was not empty" >&2; exit 9; fi',
  `for name in ${conversionEnvironment(spec).map(([name]) => name).join(' ')}; do printf '%s=%s\\0' "$name" "\${!name}"; done`,
  'cat "$0" >"$SCRIPT_COPY"',
  'exit 7',
].join('\n');

let work: string;
beforeAll(() => { work = mkdtempSync(join(tmpdir(), 'a2d-render-')); });
afterAll(() => rmSync(work, { recursive: true, force: true }));

function runRendered(shell: string, command: string) {
  const scriptDir = mkdtempSync(join(work, 'tmp-'));
  const copy = join(work, `copy-${shell}`);
  const result = spawnSync(shell, ['-c', command], {
    cwd: work,
    env: { PATH: process.env.PATH, TMPDIR: scriptDir, SCRIPT_COPY: copy, HOME: '/nonexistent' },
    input: 'this must not reach the script\n',
    encoding: 'utf8',
  });
  return { ...result, scriptDir, copy };
}

describe('renderConversionCommand', () => {
  it('is valid sh and bash with the real conversion script, carried compressed', () => {
    const command = renderConversionCommand(spec);
    const encoded = command.split('\n').filter((line) => /^[A-Za-z0-9+/=]{1,76}$/.test(line)).join('');
    expect(gunzipSync(Buffer.from(encoded, 'base64')).toString('utf8')).toBe(loadConversionScript());
    // Well under SSM's limit on command parameters, and much smaller than the script itself.
    expect(command.length).toBeLessThan(loadConversionScript().length * 0.6);
    for (const shell of ['sh', 'bash']) {
      const check = spawnSync(shell, ['-n'], { input: command, encoding: 'utf8' });
      expect({ shell, status: check.status, stderr: check.stderr }).toEqual({ shell, status: 0, stderr: '' });
    }
  });

  it.each(['sh', 'bash'])('round-trips hostile values into the environment under %s, runs the script verbatim, and cleans up', (shell) => {
    const run = runRendered(shell, renderConversionCommand(spec, ENV_DUMP_SCRIPT));
    expect(run.stderr).toBe('');
    expect(run.status).toBe(7);
    const seen = Object.fromEntries(run.stdout.split('\0').filter(Boolean).map((pair) => {
      const at = pair.indexOf('=');
      return [pair.slice(0, at), pair.slice(at + 1)];
    }));
    expect(seen).toEqual({
      A2D_VOLUME_ID: 'vol-0123456789abcdef0',
      A2D_DEVICE: '/dev/sdf',
      A2D_REPOSITORY_URI: 'registry.example:5000/team/web',
      A2D_TAGS: 'latest ami-0abc',
      A2D_PLATFORM: 'linux/arm64',
      A2D_REGION: 'eu-west-1',
      A2D_AMI_ID: 'ami-0abc',
      A2D_AMI_NAME: HOSTILE,
      A2D_AMI_CREATION_DATE: '2025-10-01T10:00:00.000Z',
      A2D_CHANGES: spec.changes.join('\n'),
      A2D_EXCLUDES: spec.excludes.join('\n'),
      A2D_COMPRESSION: 'zstd',
    });
    // Nothing was executed from the values, the script arrived byte for byte, its temp file is gone.
    expect(readdirSync(work).filter((name) => name.startsWith('pwned'))).toEqual([]);
    expect(spawnSync('cat', [run.copy], { encoding: 'utf8' }).stdout).toBe(`${ENV_DUMP_SCRIPT}\n`);
    expect(readdirSync(run.scriptDir)).toEqual([]);
  });

  it('maps x86_64 to linux/amd64', () => {
    expect(conversionEnvironment({ ...spec, architecture: 'x86_64' })).toContainEqual(['A2D_PLATFORM', 'linux/amd64']);
  });
});

// Rendering the SSM command: a POSIX-sh prelude (the agent may run it with `sh`) that writes the
// conversion script into a temporary file, exports its inputs, and runs it with bash. The script
// travels gzip-compressed and base64-encoded, a third of its size, to stay well inside SSM's limit
// on command parameters. Values reach the script only as single-quoted shell words, so nothing in an AMI name,
// tag or --change can be expanded or executed by the prelude.
import { gzipSync } from 'node:zlib';
import { readFileSync } from 'node:fs';
import type { Architecture, ConversionSpec } from '../machine/types.js';

/**
 * Compiled code runs from dist/src/effects/, sources from src/effects/; the script is shipped only
 * under src/effects/remote/, so it is found from the package root in both cases.
 */
const SCRIPT_URL = new URL('../../../src/effects/remote/convert.sh', import.meta.url);
const SOURCE_SCRIPT_URL = new URL('./remote/convert.sh', import.meta.url);

export function loadConversionScript(): string {
  for (const url of [SCRIPT_URL, SOURCE_SCRIPT_URL]) {
    try {
      return readFileSync(url, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
  }
  throw new Error(`conversion script not found at ${SCRIPT_URL.pathname}; the package is incomplete`);
}

const PLATFORM: Record<Architecture, string> = { x86_64: 'linux/amd64', arm64: 'linux/arm64' };

/** A single-quoted shell word: the only character that needs care inside '' is ' itself. */
export function shellQuote(value: string): string {
  if (value.includes('\0')) throw new Error('a value for the remote script contains a NUL byte');
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/** The script's environment, in the order the script documents it. */
export function conversionEnvironment(spec: ConversionSpec): [string, string][] {
  return [
    ['A2D_VOLUME_ID', spec.volumeId],
    ['A2D_DEVICE', spec.device],
    ['A2D_REPOSITORY_URI', spec.repositoryUri],
    ['A2D_TAGS', spec.tags.join(' ')],
    ['A2D_PLATFORM', PLATFORM[spec.architecture]],
    ['A2D_REGION', spec.region],
    ['A2D_AMI_ID', spec.ami.id],
    ['A2D_AMI_NAME', spec.ami.name],
    ['A2D_AMI_CREATION_DATE', spec.ami.creationDate],
    ['A2D_CHANGES', spec.changes.join('\n')],
    ['A2D_EXCLUDES', spec.excludes.join('\n')],
    ['A2D_COMPRESSION', spec.compression],
  ];
}

/** Base64 lines of 76 characters, as `base64 -d` reads them. */
function encodeScript(script: string): string {
  return (gzipSync(Buffer.from(script, 'utf8'), { level: 9 }).toString('base64').match(/.{1,76}/g) ?? []).join('\n');
}

export function renderConversionCommand(spec: ConversionSpec, script: string = loadConversionScript()): string {
  const body = script.endsWith('\n') ? script : `${script}\n`;
  // Base64 never contains '_', so the delimiter cannot occur in the encoded script.
  return [
    'a2d_script=$(mktemp "${TMPDIR:-/tmp}/ami2docker-convert.XXXXXX") || exit 1',
    `base64 -d <<'AMI2DOCKER_SCRIPT' | gzip -dc >"$a2d_script" || exit 1`,
    encodeScript(body),
    'AMI2DOCKER_SCRIPT',
    ...conversionEnvironment(spec).map(([name, value]) => `export ${name}=${shellQuote(value)}`),
    'bash "$a2d_script" </dev/null',
    'a2d_status=$?',
    'rm -f "$a2d_script"',
    'exit $a2d_status',
    '',
  ].join('\n');
}

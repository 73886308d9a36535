// Rendering the SSM command: a POSIX-sh prelude (the agent may run it with `sh`) that writes the
// conversion script into a temporary file through a quoted heredoc, exports its inputs, and runs it
// with bash. Values reach the script only as single-quoted shell words, so nothing in an AMI name,
// tag or --change can be expanded or executed by the prelude.
import { createHash } from 'node:crypto';
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

/** A heredoc delimiter that cannot occur in the script: derived from its hash, and checked. */
function heredocDelimiter(script: string): string {
  const delimiter = `AMI2DOCKER_SCRIPT_${createHash('sha256').update(script).digest('hex').slice(0, 16)}`;
  if (script.split('\n').includes(delimiter)) throw new Error('the conversion script contains its own heredoc delimiter');
  return delimiter;
}

export function renderConversionCommand(spec: ConversionSpec, script: string = loadConversionScript()): string {
  const body = script.endsWith('\n') ? script : `${script}\n`;
  const delimiter = heredocDelimiter(body);
  return [
    'a2d_script=$(mktemp "${TMPDIR:-/tmp}/ami2docker-convert.XXXXXX") || exit 1',
    `cat >"$a2d_script" <<'${delimiter}'`,
    `${body}${delimiter}`,
    ...conversionEnvironment(spec).map(([name, value]) => `export ${name}=${shellQuote(value)}`),
    'bash "$a2d_script" </dev/null',
    'a2d_status=$?',
    'rm -f "$a2d_script"',
    'exit $a2d_status',
    '',
  ].join('\n');
}

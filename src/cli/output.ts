// Two renderers of one event stream: lines for people (progress on stderr, the outcome on stdout)
// and NDJSON for scripts (`--json`: one object per line on stdout, the last one the result).
import type { ProgressEvent } from '../effects/context.js';

export interface Output {
  /** The run entered a new state. */
  state(runId: string, state: string): void;
  /** Progress from an effect, or output from the remote command. */
  progress(event: ProgressEvent): void;
  /** A notice for people (ignored in JSON mode, where events carry the same facts). */
  note(message: string): void;
  /** The final outcome: `lines` for people, `result` for scripts. */
  result(result: Record<string, unknown>, lines: string[]): void;
  /** A failure that ends the command. */
  error(message: string, exitCode: number, detail?: string): void;
}

interface Streams { stdout: NodeJS.WritableStream; stderr: NodeJS.WritableStream }

export function createOutput(options: { json: boolean; debug: boolean }, streams: Streams = process): Output {
  return options.json ? jsonOutput(streams) : humanOutput(options.debug, streams);
}

function jsonOutput({ stdout }: Streams): Output {
  const emit = (type: string, fields: Record<string, unknown>) => stdout.write(`${JSON.stringify({ type, at: new Date().toISOString(), ...fields })}\n`);
  return {
    state: (runId, state) => emit('state', { runId, state }),
    progress: (event) => emit(event.type, { step: event.step, message: event.message, ...(event.data ? { data: event.data } : {}) }),
    note: () => undefined,
    result: (result) => emit('result', result),
    error: (message, exitCode, detail) => emit('error', { message, exitCode, ...(detail ? { detail } : {}) }),
  };
}

const PHASE_LABELS: Record<string, string> = {
  'working.resolving': 'Resolving the AMI, account, subnet and helper image',
  'working.provisioning': 'Provisioning: role, repository, bucket, security group, volume and helper instance',
  'working.attaching': 'Attaching the volume while the helper\'s SSM agent comes online',
  'working.converting': 'Converting the filesystem into an image on the helper',
  'working.verifying': 'Verifying the pushed image in ECR',
  teardown: 'Removing temporary resources',
  pulling: 'Pulling the image into the local Docker engine',
};

function humanOutput(debug: boolean, { stdout, stderr }: Streams): Output {
  const started = Date.now();
  const stamp = () => `[${((Date.now() - started) / 1000).toFixed(1).padStart(6)}s]`;
  let lastLabel = '';
  return {
    state: (_runId, state) => {
      const label = Object.entries(PHASE_LABELS).find(([prefix]) => state === prefix || state.startsWith(`${prefix}.`))?.[1];
      if (label && label !== lastLabel) {
        lastLabel = label;
        stderr.write(`${stamp()} ${label}\n`);
      } else if (debug) {
        stderr.write(`${stamp()}   state ${state}\n`);
      }
    },
    progress: (event) => {
      if (event.type === 'output') {
        for (const line of event.message.replace(/\n$/, '').split('\n')) stderr.write(`         │ ${line}\n`);
      } else {
        stderr.write(`${stamp()}   ${event.type === 'warning' ? 'warning: ' : ''}${event.message}\n`);
      }
    },
    note: (message) => stderr.write(`${message}\n`),
    result: (_result, lines) => stdout.write(`${lines.join('\n')}\n`),
    error: (message, _exitCode, detail) => stderr.write(`ami2docker: ${message}\n${debug && detail ? `${detail}\n` : ''}`),
  };
}

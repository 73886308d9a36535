// Running the conversion on the helper through SSM Run Command, and following it to its result.
import {
  GetCommandInvocationCommand,
  ListCommandsCommand,
  SendCommandCommand,
  type GetCommandInvocationCommandOutput,
} from '@aws-sdk/client-ssm';
import { commandComment, outputPrefix } from '../machine/names.js';
import type {
  AwaitConversionInput,
  ConversionResult,
  SendConversionInput,
  SendConversionOutput,
} from '../machine/types.js';
import { readCommandOutput } from './bucket.js';
import type { EffectContext } from './context.js';
import { RemoteError, hasAwsCode } from './errors.js';
import { renderConversionCommand } from './remote-command.js';
import { pollUntil, sendOptions } from './wait.js';

const STEP_LINE = /^AMI2DOCKER_STEP (\S+) ?(.*)$/;
const RESULT_LINE = /^AMI2DOCKER_RESULT (\{.*\})\s*$/;
const ERROR_LINE = /^AMI2DOCKER_ERROR ([^:\s]+): ?(.*)$/;
/** GetCommandInvocation returns at most this much stdout. */
const INLINE_STDOUT_LIMIT = 24000;
const FINAL_STATUSES = new Set(['Success', 'Failed', 'TimedOut', 'Cancelled']);
/** What the SSM agent appends to output it cut short (`---Output truncated---`, `---Error truncated----`). */
const TRUNCATION_MARKER = /\n?-+(Output|Error) truncated-+\s*$/;

const withoutMarker = (text: string | undefined) => (text ?? '').replace(TRUNCATION_MARKER, '');

/** A command an earlier attempt of this run sent, found by its comment (SSM cannot filter on it). */
async function findSentCommand(input: SendConversionInput, ctx: EffectContext): Promise<string | undefined> {
  const comment = commandComment(input.runId);
  let NextToken: string | undefined;
  do {
    const page = await ctx.clients.ssm.send(new ListCommandsCommand({ InstanceId: input.instanceId, NextToken }), sendOptions(ctx));
    const sent = page.Commands?.find((command) => command.Comment === comment && command.DocumentName === 'AWS-RunShellScript');
    if (sent?.CommandId) return sent.CommandId;
    NextToken = page.NextToken;
  } while (NextToken);
  return undefined;
}

export async function sendConversion(input: SendConversionInput, ctx: EffectContext): Promise<SendConversionOutput> {
  const existing = await findSentCommand(input, ctx);
  if (existing) return { commandId: existing };
  const answer = await ctx.clients.ssm.send(new SendCommandCommand({
    InstanceIds: [input.instanceId],
    DocumentName: 'AWS-RunShellScript',
    Comment: commandComment(input.runId),
    Parameters: {
      commands: [renderConversionCommand(input.spec)],
      executionTimeout: [String(input.executionTimeoutSeconds)],
    },
    ...(input.bucket ? { OutputS3BucketName: input.bucket, OutputS3KeyPrefix: outputPrefix(input.runId) } : {}),
  }), sendOptions(ctx));
  const commandId = answer.Command?.CommandId;
  if (!commandId) throw new Error(`SendCommand returned no command id for instance ${input.instanceId}`);
  return { commandId };
}

/** Reports complete stdout lines as they appear; a partial last line waits for its newline. */
export class OutputFollower {
  private consumed = 0;
  constructor(private readonly ctx: EffectContext) {}

  follow(stdout: string, final = false): void {
    const fresh = stdout.slice(this.consumed);
    const end = final ? fresh.length : fresh.lastIndexOf('\n') + 1;
    if (end <= 0) return;
    this.consumed += end;
    for (const line of fresh.slice(0, end).split('\n')) this.reportLine(line.replace(/\r$/, ''));
  }

  private reportLine(line: string): void {
    if (!line || RESULT_LINE.test(line)) return;
    const step = STEP_LINE.exec(line);
    if (step) this.ctx.report({ type: 'step', step: step[1], message: step[2] });
    else this.ctx.report({ type: 'output', step: 'convert', message: line });
  }
}

/** The last result line of the script's stdout. */
export function parseResult(stdout: string): ConversionResult | undefined {
  const line = stdout.split('\n').map((l) => l.trim()).filter((l) => RESULT_LINE.test(l)).pop();
  if (!line) return undefined;
  const parsed = JSON.parse(RESULT_LINE.exec(line)![1]) as Partial<ConversionResult>;
  if (typeof parsed.imageUri !== 'string' || typeof parsed.digest !== 'string' || !Array.isArray(parsed.tags)) {
    throw new RemoteError('result', `malformed result line: ${line}`);
  }
  return { imageUri: parsed.imageUri, digest: parsed.digest, tags: parsed.tags.map(String) };
}

/** The script's own error line (the last one), else the last thing it said on stderr. */
export function parseFailure(stderr: string, stdout: string, invocation: GetCommandInvocationCommandOutput): RemoteError {
  const status = invocation.Status ?? 'Failed';
  const errorLine = [...stderr.split('\n'), ...stdout.split('\n')].map((l) => l.trim()).filter((l) => ERROR_LINE.test(l)).pop();
  if (errorLine) {
    const [, step, message] = ERROR_LINE.exec(errorLine)!;
    return new RemoteError(step, message, status);
  }
  const lastWords = stderr.split('\n').map((l) => l.trim()).filter(Boolean).pop();
  const why = status === 'TimedOut'
    ? `the command exceeded its execution timeout (${invocation.StatusDetails ?? 'TimedOut'})`
    : `the command ended ${invocation.StatusDetails ?? status}${invocation.ResponseCode !== undefined && invocation.ResponseCode >= 0 ? ` with exit code ${invocation.ResponseCode}` : ''}`;
  return new RemoteError(status === 'TimedOut' ? 'timeout' : 'unknown', lastWords ? `${why}: ${lastWords}` : why, status);
}

async function invocation(input: AwaitConversionInput, ctx: EffectContext): Promise<GetCommandInvocationCommandOutput | undefined> {
  try {
    return await ctx.clients.ssm.send(new GetCommandInvocationCommand({ CommandId: input.commandId, InstanceId: input.instanceId }), sendOptions(ctx));
  } catch (error) {
    // Right after SendCommand the invocation does not exist yet.
    if (hasAwsCode(error, 'InvocationDoesNotExist')) return undefined;
    throw error;
  }
}

/**
 * The full output: from S3 when a bucket is set (GetCommandInvocation keeps only the first 24,000
 * characters of stdout and 8,000 of stderr), else what GetCommandInvocation holds.
 */
async function fullOutput(input: AwaitConversionInput, answer: GetCommandInvocationCommandOutput, ctx: EffectContext) {
  const inline = { stdout: withoutMarker(answer.StandardOutputContent), stderr: withoutMarker(answer.StandardErrorContent) };
  if (!input.bucket) return inline;
  try {
    const stored = await readCommandOutput({ bucket: input.bucket, runId: input.runId, commandId: input.commandId, instanceId: input.instanceId }, ctx);
    return { stdout: stored.stdout ?? inline.stdout, stderr: stored.stderr ?? inline.stderr };
  } catch (error) {
    // The result may still be in the inline part; losing the run over unreadable logs would be worse.
    ctx.report({ type: 'warning', step: 'convert', message: `could not read the command output from s3://${input.bucket}/${outputPrefix(input.runId)} (${(error as Error).name}: ${(error as Error).message}); using the possibly truncated output SSM returned` });
    return inline;
  }
}

export async function awaitConversion(input: AwaitConversionInput, ctx: EffectContext): Promise<ConversionResult> {
  const follower = new OutputFollower(ctx);
  const finished = await pollUntil(ctx, {
    deadline: input.deadline,
    timeoutMessage: () => `the conversion command ${input.commandId} on ${input.instanceId} was still running at ${input.deadline}`,
  }, async () => {
    const answer = await invocation(input, ctx);
    if (!answer) return undefined;
    follower.follow(withoutMarker(answer.StandardOutputContent));
    return FINAL_STATUSES.has(answer.Status ?? '') ? answer : undefined;
  });
  const { stdout, stderr } = await fullOutput(input, finished, ctx);
  follower.follow(stdout, true);
  if (finished.Status !== 'Success') throw parseFailure(stderr, stdout, finished);
  const result = parseResult(stdout);
  if (!result) {
    const truncated = TRUNCATION_MARKER.test(finished.StandardOutputContent ?? '') || stdout.length >= INLINE_STDOUT_LIMIT;
    const why = !truncated
      ? 'the script finished without a result line'
      : input.bucket
        ? 'SSM truncated the output before the result line and the full output could not be read from S3'
        : 'SSM truncated the output before the result line; pass --ssm-bucket to keep the full output';
    throw new RemoteError('result', why, finished.Status);
  }
  return result;
}

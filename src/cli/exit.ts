// Exit codes and the mapping from any error to one line a user can act on.
import type { StepError } from '../machine/types.js';

export const EXIT = {
  done: 0,
  failed: 1,
  usage: 2,
  permission: 3,
  interrupted: 4,
  cleanupIncomplete: 5,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** An error the CLI has already turned into its message and exit code. */
export class CliError extends Error {
  override name = 'CliError';
  constructor(message: string, readonly exitCode: ExitCode) {
    super(message);
  }
}

const PERMISSION_CODES = new Set([
  'AccessDenied', 'AccessDeniedException', 'UnauthorizedOperation', 'UnauthorizedAccess', 'AuthFailure',
  'InvalidClientTokenId', 'SignatureDoesNotMatch', 'ExpiredToken', 'ExpiredTokenException', 'UnrecognizedClientException',
  'InvalidAccessKeyId', 'CredentialsProviderError', 'TokenRefreshRequired', 'MissingAuthenticationToken',
]);
const USAGE_NAMES = new Set(['UsageError', 'InputError', 'CheckpointError', 'YError']);

export function isPermissionError(error: { name?: string; code?: string } | undefined): boolean {
  return Boolean(error && (PERMISSION_CODES.has(error.name ?? '') || PERMISSION_CODES.has(error.code ?? '')));
}

/** `... is not authorized to perform: ec2:RunInstances on ...` → `ec2:RunInstances`. */
export function missingAction(message: string): string | undefined {
  return /not authorized to perform:?\s+([a-z0-9-]+:[A-Za-z0-9]+)/.exec(message)?.[1];
}

/** Messages are one line: a wrapped AWS or yargs message is joined back together. */
export const oneLine = (message: string) => message.replace(/\s*\n\s*/g, ' ').trim();

export function exitCodeFor(error: unknown): ExitCode {
  if (error instanceof CliError) return error.exitCode;
  const e = error as { name?: string; code?: string };
  if (USAGE_NAMES.has(e?.name ?? '')) return EXIT.usage;
  if (isPermissionError(e)) return EXIT.permission;
  return EXIT.failed;
}

/** One line: what failed, why, and — for permissions — the IAM action to grant. */
export function describeFailure(error: StepError): string {
  const action = missingAction(error.message);
  const why = error.name && !error.message.startsWith(error.name) && error.name !== 'Error' ? `${error.name}: ${error.message}` : error.message;
  const hint = action ? ` (grant ${action} to the caller)` : isPermissionError(error) ? ' (check the credentials and the IAM permissions listed in the README)' : '';
  return `${error.step} failed: ${oneLine(why)}${hint}`;
}

// Errors the effects throw besides the SDK's own. The CLI maps them to exit codes and messages:
// InputError → 2 (the user must change something), everything else → the step's failure.

/** A problem only the user can fix (bad AMI name, missing subnet, foreign bucket ...). Nothing was created. */
export class InputError extends Error {
  override name = 'InputError';
}

/** A wait ran past its deadline. The message says what was awaited and the likely causes. */
export class TimeoutError extends Error {
  override name = 'TimeoutError';
}

/** The conversion script failed on the helper; `step` is the script's own step name. */
export class RemoteError extends Error {
  override name = 'RemoteError';
  constructor(readonly step: string, readonly remoteMessage: string, readonly status?: string) {
    super(`remote conversion failed at step '${step}': ${remoteMessage}`);
  }
}

/** The image in the registry does not match what the conversion reported. */
export class VerificationError extends Error {
  override name = 'VerificationError';
}

/**
 * The error code of an AWS SDK error. SDK v3 names modelled errors after their shape
 * (`NoSuchEntityException` for the wire code `NoSuchEntity`), so both spellings are matched.
 */
export function awsErrorCode(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const e = error as { name?: unknown; Code?: unknown; code?: unknown };
  for (const candidate of [e.Code, e.code, e.name]) {
    if (typeof candidate === 'string' && candidate !== 'Error') return candidate;
  }
  return undefined;
}

export function hasAwsCode(error: unknown, ...codes: string[]): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const e = error as { name?: unknown; Code?: unknown; code?: unknown };
  const seen = [e.name, e.Code, e.code].filter((c): c is string => typeof c === 'string');
  return seen.some((c) => codes.includes(c) || codes.includes(c.replace(/Exception$/, '')));
}

export function httpStatus(error: unknown): number | undefined {
  const meta = (error as { $metadata?: { httpStatusCode?: number } } | null)?.$metadata;
  return meta?.httpStatusCode;
}

/** Runs `call`; an error with one of `codes` (a resource already gone, say) becomes `undefined`. */
export async function unlessCode<T>(call: () => Promise<T>, ...codes: string[]): Promise<T | undefined> {
  try {
    return await call();
  } catch (error) {
    if (hasAwsCode(error, ...codes)) return undefined;
    throw error;
  }
}

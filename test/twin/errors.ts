// One error type for every service; each protocol renders it in its own wire shape.

export class AwsError extends Error {
  constructor(
    readonly code: string,
    message: string,
    /** HTTP status; when absent the protocol's usual status for client errors is used. */
    readonly status?: number,
    /** Extra fields some shapes carry (S3's BucketName / Key). */
    readonly extra: Record<string, string> = {},
  ) {
    super(message);
    this.name = code;
  }
}

/** The kinds of failure every protocol names differently. */
export type GenericFailure = 'throttle' | 'accessDenied';

export type Protocol = 'ec2' | 'query' | 'json' | 'restxml';

const GENERIC: Record<Protocol, Record<GenericFailure, { code: string; status: number }>> = {
  ec2: { throttle: { code: 'RequestLimitExceeded', status: 503 }, accessDenied: { code: 'UnauthorizedOperation', status: 403 } },
  query: { throttle: { code: 'Throttling', status: 400 }, accessDenied: { code: 'AccessDenied', status: 403 } },
  json: { throttle: { code: 'ThrottlingException', status: 400 }, accessDenied: { code: 'AccessDeniedException', status: 400 } },
  restxml: { throttle: { code: 'SlowDown', status: 503 }, accessDenied: { code: 'AccessDenied', status: 403 } },
};

export function genericError(protocol: Protocol, kind: GenericFailure, message: string): AwsError {
  const { code, status } = GENERIC[protocol][kind];
  return new AwsError(code, message, status);
}

/** EC2 answers a few codes with a server status, which SDKs retry as transient. */
const EC2_SERVER_CODES: Record<string, number> = {
  InsufficientInstanceCapacity: 500,
  InsufficientVolumeCapacity: 500,
  InternalError: 500,
  ServiceUnavailable: 503,
  Unavailable: 503,
  RequestLimitExceeded: 503,
  DryRunOperation: 412,
  UnauthorizedOperation: 403,
};

/** IAM and STS statuses that differ from 400. */
const QUERY_STATUS: Record<string, number> = {
  NoSuchEntity: 404,
  EntityAlreadyExists: 409,
  DeleteConflict: 409,
  AccessDenied: 403,
  ServiceFailure: 500,
};

const S3_STATUS: Record<string, number> = {
  NoSuchBucket: 404,
  NoSuchKey: 404,
  NoSuchTagSet: 404,
  NotFound: 404,
  BucketAlreadyOwnedByYou: 409,
  BucketAlreadyExists: 409,
  BucketNotEmpty: 409,
  AccessDenied: 403,
  SlowDown: 503,
  InternalError: 500,
};

export function statusOf(protocol: Protocol, error: AwsError): number {
  if (error.status) return error.status;
  const table = protocol === 'ec2' ? EC2_SERVER_CODES : protocol === 'query' ? QUERY_STATUS : protocol === 'restxml' ? S3_STATUS : {};
  return table[error.code] ?? 400;
}

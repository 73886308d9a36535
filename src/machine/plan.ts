// Turns what the user asked for into a validated, normalised Plan, before anything touches AWS.
// Every rejection here is a usage error: one line that says what to change.
import { newRunId } from './names.js';
import type { Compression, Plan } from './types.js';

export interface ConvertOptions {
  amiName?: string;
  amiId?: string;
  amiOwner?: string[];
  region: string;
  profile?: string;
  subnetId?: string;
  instanceProfile?: string;
  instanceType?: string;
  instanceAmiName?: string;
  instanceAmiId?: string;
  ecrRegistry?: string;
  ssmBucket?: string;
  tag?: string[];
  change?: string[];
  exclude?: string[];
  maxRuntime?: string;
  ssmTimeout?: string;
  compression?: string;
  keepOnFailure?: boolean;
  pull?: boolean;
}

export class UsageError extends Error {
  override name = 'UsageError';
}

export const DEFAULT_MAX_RUNTIME = '60m';
export const DEFAULT_SSM_TIMEOUT = '10m';
const MIN_RUNTIME_SECONDS = 60;
const MAX_RUNTIME_SECONDS = 24 * 3600;

/** Instructions `docker import --change` accepts. */
export const CHANGE_INSTRUCTIONS = [
  'CMD', 'ENTRYPOINT', 'ENV', 'EXPOSE', 'HEALTHCHECK', 'LABEL', 'ONBUILD', 'STOPSIGNAL', 'USER', 'VOLUME', 'WORKDIR',
] as const;

const patterns = {
  amiId: /^ami-[0-9a-f]{8,17}$/,
  subnetId: /^subnet-[0-9a-f]{8,17}$/,
  region: /^[a-z]{2}(-[a-z]+)+-\d+$/,
  instanceType: /^[a-z][a-z0-9-]*\.[a-z0-9]+$/,
  dockerTag: /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/,
  bucket: /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/,
  owner: /^(\d{12}|self|amazon|aws-marketplace|aws-backup-vault)$/,
};

/** `90s`, `45m`, `2h`, or a bare number of minutes. */
export function parseDuration(text: string, flag: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*(s|m|h)?$/.exec(text.trim());
  if (!match) throw new UsageError(`${flag} '${text}' is not a duration: use e.g. 90s, 45m or 2h`);
  const unit = match[2] ?? 'm';
  return Math.round(Number(match[1]) * { s: 1, m: 60, h: 3600 }[unit as 's' | 'm' | 'h']);
}

function check(ok: boolean, message: string): void {
  if (!ok) throw new UsageError(message);
}

export function normalisePlan(options: ConvertOptions, now = new Date(), runId = newRunId(now)): Plan {
  check(!(options.amiName && options.amiId), '--ami-name and --ami-id name the same thing: pass only one');
  check(Boolean(options.amiName || options.amiId), 'no AMI given: pass --ami-name NAME or --ami-id ami-…');
  check(!options.amiId || patterns.amiId.test(options.amiId), `--ami-id '${options.amiId}' is not an AMI id (ami-0123456789abcdef0)`);
  check(!(options.instanceAmiName && options.instanceAmiId), '--instance-ami-name and --instance-ami-id conflict: pass only one');
  check(!options.instanceAmiId || patterns.amiId.test(options.instanceAmiId), `--instance-ami-id '${options.instanceAmiId}' is not an AMI id`);
  check(patterns.region.test(options.region), `region '${options.region}' is not an AWS region name (e.g. us-east-1)`);
  check(!options.subnetId || patterns.subnetId.test(options.subnetId), `--subnet-id '${options.subnetId}' is not a subnet id (subnet-…)`);
  check(!options.instanceType || patterns.instanceType.test(options.instanceType), `--instance-type '${options.instanceType}' is not an instance type (e.g. c7i.large)`);
  check(!options.ssmBucket || patterns.bucket.test(options.ssmBucket), `--ssm-bucket '${options.ssmBucket}' is not a valid S3 bucket name`);
  for (const owner of options.amiOwner ?? []) {
    check(patterns.owner.test(owner), `--ami-owner '${owner}' must be an account id, self, amazon or aws-marketplace`);
  }
  const tags = options.tag ?? [];
  for (const tag of tags) check(patterns.dockerTag.test(tag), `--tag '${tag}' is not a valid image tag (letters, digits, _ . -; up to 128)`);
  const changes = (options.change ?? []).map((change) => change.trim());
  for (const change of changes) {
    const keyword = change.split(/\s+/, 1)[0]!.toUpperCase();
    check(
      (CHANGE_INSTRUCTIONS as readonly string[]).includes(keyword) && change.length > keyword.length,
      `--change '${change}' is not an instruction docker import accepts (${CHANGE_INSTRUCTIONS.join(', ')})`,
    );
  }
  const excludes = (options.exclude ?? []).map((path) => path.replace(/\/+$/, ''));
  for (const path of excludes) {
    check(path.startsWith('/') && !path.split('/').includes('..') && path !== '', `--exclude '${path}' must be an absolute path inside the image, without '..'`);
  }
  const compression = (options.compression ?? 'gzip') as Compression;
  check(compression === 'gzip' || compression === 'zstd', `--compression '${options.compression}' must be gzip or zstd`);
  const maxRuntimeSeconds = parseDuration(options.maxRuntime ?? DEFAULT_MAX_RUNTIME, '--max-runtime');
  check(
    maxRuntimeSeconds >= MIN_RUNTIME_SECONDS && maxRuntimeSeconds <= MAX_RUNTIME_SECONDS,
    `--max-runtime must be between 1m and 24h (got ${options.maxRuntime})`,
  );
  const ssmOnlineTimeoutSeconds = parseDuration(options.ssmTimeout ?? DEFAULT_SSM_TIMEOUT, '--ssm-timeout');
  check(ssmOnlineTimeoutSeconds > 0, '--ssm-timeout must be more than 0');

  return {
    runId,
    region: options.region,
    ...(options.profile ? { profile: options.profile } : {}),
    ami: { ...(options.amiId ? { id: options.amiId } : { name: options.amiName }), owners: options.amiOwner ?? [] },
    ...(options.subnetId ? { subnetId: options.subnetId } : {}),
    ...(options.instanceProfile ? { instanceProfile: options.instanceProfile } : {}),
    ...(options.instanceType ? { instanceType: options.instanceType } : {}),
    helperAmi: {
      ...(options.instanceAmiId ? { id: options.instanceAmiId } : {}),
      ...(options.instanceAmiName ? { name: options.instanceAmiName } : {}),
    },
    ...(options.ecrRegistry ? { ecrRepository: options.ecrRegistry } : {}),
    ...(options.ssmBucket ? { ssmBucket: options.ssmBucket } : {}),
    imageTags: tags.length > 0 ? [...new Set(tags)] : ['latest'],
    tagWithAmiId: tags.length === 0,
    changes,
    excludes,
    compression,
    maxRuntimeSeconds,
    ssmOnlineTimeoutSeconds,
    keepOnFailure: Boolean(options.keepOnFailure),
    pull: Boolean(options.pull),
    createdAt: now.toISOString(),
    expiresAt: new Date(now.getTime() + maxRuntimeSeconds * 1000).toISOString(),
  };
}

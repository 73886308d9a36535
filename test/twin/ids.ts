// Identifiers shaped like AWS's, so code that validates or parses them sees nothing unusual.
import { createHash, randomBytes, randomUUID } from 'node:crypto';

/** `i-0123456789abcdef0`: a prefix and 17 hex digits, as EC2 has used since 2016. */
export function ec2Id(prefix: string): string {
  return `${prefix}-${randomBytes(9).toString('hex').slice(0, 17)}`;
}

export const requestId = (): string => randomUUID();

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** IAM unique ids and access key ids: a four-letter kind (AIDA, AROA, AIPA, ASIA) and 16 more. */
export function iamUniqueId(kind: string, seed?: string): string {
  const bytes = seed ? createHash('sha256').update(seed).digest() : randomBytes(16);
  let out = kind;
  for (let i = 0; i < 16; i++) out += ALNUM[bytes[i] % ALNUM.length];
  return out;
}

// One set of AWS clients per run, made on first use so a command that needs only STS does not pay
// for loading the EC2 model. Endpoints and credentials come from the SDK's standard chain
// (AWS_PROFILE, AWS_ENDPOINT_URL, ...), so nothing here knows what answers on the other end.
import { EC2Client } from '@aws-sdk/client-ec2';
import { ECRClient } from '@aws-sdk/client-ecr';
import { IAMClient } from '@aws-sdk/client-iam';
import { S3Client } from '@aws-sdk/client-s3';
import { SSMClient } from '@aws-sdk/client-ssm';
import { STSClient } from '@aws-sdk/client-sts';
import { fromIni } from '@aws-sdk/credential-providers';

export interface ClientOptions {
  region: string;
  profile?: string;
  /** Throttling-heavy polling needs more than the SDK's default 3 attempts. */
  maxAttempts?: number;
}

export interface AwsClients {
  readonly region: string;
  readonly ec2: EC2Client;
  readonly ssm: SSMClient;
  readonly s3: S3Client;
  readonly iam: IAMClient;
  readonly ecr: ECRClient;
  readonly sts: STSClient;
  destroy(): void;
}

export function createClients(options: ClientOptions): AwsClients {
  const config = {
    region: options.region,
    maxAttempts: options.maxAttempts ?? 8,
    ...(options.profile ? { credentials: fromIni({ profile: options.profile }) } : {}),
  };
  const made = new Map<string, { destroy(): void }>();
  const lazy = <T extends { destroy(): void }>(key: string, make: () => T): T => {
    if (!made.has(key)) made.set(key, make());
    return made.get(key) as T;
  };
  return {
    region: options.region,
    get ec2() { return lazy('ec2', () => new EC2Client(config)); },
    get ssm() { return lazy('ssm', () => new SSMClient(config)); },
    get s3() { return lazy('s3', () => new S3Client(config)); },
    get iam() { return lazy('iam', () => new IAMClient(config)); },
    get ecr() { return lazy('ecr', () => new ECRClient(config)); },
    get sts() { return lazy('sts', () => new STSClient(config)); },
    destroy() { for (const client of made.values()) client.destroy(); made.clear(); },
  };
}

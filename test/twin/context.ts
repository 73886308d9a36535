// What every service handler receives, and the shape of the services themselves.
import type { Tag } from './tags.js';

export type ServiceName = 'ec2' | 'iam' | 'sts' | 'ssm' | 'ecr' | 's3';

export interface TwinConfig {
  stateDir: string;
  account: string;
  region: string;
  timeScale: number;
  /** How much AWS's latencies vary around their nominal values (see Clock); 0: not at all. */
  latencyJitter: number;
  /** host:port of the Docker registry that stands in for ECR. */
  registry: string;
  /** The twin's own URL, known once it listens; instances call back to it. */
  url: string;
}

/** Who signed a request: the twin's user, or an instance's role. */
export interface Caller {
  accessKeyId: string;
  account: string;
  arn: string;
  userId: string;
  /** Set when the key belongs to an instance's role (calls made from inside the instance). */
  instanceId?: string;
  roleName?: string;
}

/** What a handler reports about a resource it created or found (for the control API's history). */
export interface Outcome {
  id?: string;
  /** false when an idempotent call returned what an earlier call had created. */
  created?: boolean;
  tags?: Tag[];
}

export interface Call {
  service: ServiceName;
  operation: string;
  caller: Caller;
  requestId: string;
  record(outcome: Outcome): void;
}

// Inputs are the model's member names with model-typed values; handlers read them loosely, the
// way a service reads a request, and validate what they use.
export type Input = Record<string, any>;
export type Handler = (input: Input, call: Call) => unknown;

export interface QueryService {
  readonly operations: Record<string, Handler>;
}

// What every effect receives besides its input: the AWS clients, a sink for progress, the
// abort signal of the invoking actor, and the polling pace.
import type { AwsClients } from './clients.js';

export interface ProgressEvent {
  /** `step` marks progress of a phase; `output` is remote command output; `warning` is worth showing. */
  type: 'step' | 'output' | 'warning';
  step: string;
  message: string;
  data?: Record<string, unknown>;
}

export interface EffectContext {
  clients: AwsClients;
  report: (event: ProgressEvent) => void;
  signal?: AbortSignal;
  /** Seconds between polls of a resource's state (AMI2DOCKER_POLL_INTERVAL, default 2). */
  pollSeconds: number;
}

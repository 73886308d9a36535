// Failures a test can switch on through the control API: throttling at a rate, a given error for
// the next N calls of an operation, an SSM agent that never registers, commands that fail.
import { AwsError } from './errors.js';

export interface FaultSpec {
  throttle?: { rate: number; operations?: string[] };
  error?: { operation: string; code: string; message?: string; count?: number; status?: number };
  ssmNeverRegisters?: boolean;
  commandFails?: { exitCode?: number; stderr?: string; count?: number };
}

interface PendingError { operation: string; code: string; message: string; remaining: number; status?: number }

export class Faults {
  private throttle?: { rate: number; operations?: Set<string> };
  private errors: PendingError[] = [];
  ssmNeverRegisters = false;
  private commandFailure?: { exitCode: number; stderr: string; remaining: number };

  /** Adds the faults in `spec` to those already set. */
  add(spec: FaultSpec): void {
    if (spec.throttle) {
      const rate = Number(spec.throttle.rate);
      if (!(rate >= 0 && rate <= 1)) throw new Error('throttle.rate must be between 0 and 1');
      this.throttle = { rate, operations: spec.throttle.operations ? new Set(spec.throttle.operations) : undefined };
    }
    if (spec.error) {
      const { operation, code } = spec.error;
      if (!operation || !code) throw new Error('error needs operation and code');
      this.errors.push({ operation, code, message: spec.error.message ?? code, remaining: spec.error.count ?? 1, status: spec.error.status });
    }
    if (spec.ssmNeverRegisters !== undefined) this.ssmNeverRegisters = Boolean(spec.ssmNeverRegisters);
    if (spec.commandFails) {
      this.commandFailure = {
        exitCode: spec.commandFails.exitCode ?? 1,
        stderr: spec.commandFails.stderr ?? '',
        remaining: spec.commandFails.count ?? Number.POSITIVE_INFINITY,
      };
    }
  }

  clear(): void {
    this.throttle = undefined;
    this.errors = [];
    this.ssmNeverRegisters = false;
    this.commandFailure = undefined;
  }

  shouldThrottle(operation: string): boolean {
    const t = this.throttle;
    if (!t || (t.operations && !t.operations.has(operation))) return false;
    return Math.random() < t.rate;
  }

  /** The injected error for this call of `operation`, if one is pending (each counts down once). */
  takeError(operation: string): AwsError | undefined {
    const pending = this.errors.find((e) => e.operation === operation && e.remaining > 0);
    if (!pending) return undefined;
    pending.remaining--;
    this.errors = this.errors.filter((e) => e.remaining > 0);
    return new AwsError(pending.code, pending.message, pending.status);
  }

  takeCommandFailure(): { exitCode: number; stderr: string } | undefined {
    const failure = this.commandFailure;
    if (!failure || failure.remaining <= 0) return undefined;
    failure.remaining--;
    return { exitCode: failure.exitCode, stderr: failure.stderr };
  }

  describe(): Record<string, unknown> {
    return {
      throttle: this.throttle ? { rate: this.throttle.rate, operations: this.throttle.operations ? [...this.throttle.operations] : undefined } : undefined,
      errors: this.errors.map(({ operation, code, remaining }) => ({ operation, code, remaining })),
      ssmNeverRegisters: this.ssmNeverRegisters,
      commandFails: this.commandFailure ? { exitCode: this.commandFailure.exitCode, remaining: this.commandFailure.remaining } : undefined,
    };
  }
}

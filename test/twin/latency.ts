// How long things take in AWS, in seconds, and a clock that runs them `scale` times as fast.
// Execution of commands is real work and is never scaled: only AWS's own waiting is.

export const LATENCY = {
  /** RunInstances → running. */
  instanceBoot: 15,
  /** running → the SSM agent reports Online. */
  ssmRegistration: 30,
  /** CreateVolume → available. */
  volumeCreate: 5,
  /** AttachVolume → attached. */
  attach: 3,
  /** DetachVolume → available. */
  detach: 2,
  /** CreateInstanceProfile / AddRoleToInstanceProfile → usable by RunInstances. */
  profilePropagation: 10,
  /** shutting-down → terminated. */
  terminate: 20,
  /** stopping → stopped. */
  stop: 15,
  /** SendCommand → the agent has received it (GetCommandInvocation finds it). */
  commandDelivery: 1,
  /** received → started. */
  commandStart: 1,
} as const;

export type LatencyName = keyof typeof LATENCY;

export class Clock {
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(readonly scale: number) {}

  /** Milliseconds a latency lasts at this clock's scale. */
  ms(name: LatencyName): number {
    return LATENCY[name] * 1000 * this.scale;
  }

  /** True once `name`'s latency has passed since `since`. */
  elapsed(since: Date, name: LatencyName): boolean {
    return Date.now() - since.getTime() >= this.ms(name);
  }

  /** Runs `action` after `name`'s latency (or after `seconds` of AWS time, scaled); returns a cancel. */
  after(delay: LatencyName | { seconds: number }, action: () => void | Promise<void>): () => void {
    const ms = typeof delay === 'string' ? this.ms(delay) : delay.seconds * 1000 * this.scale;
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      Promise.resolve()
        .then(action)
        .catch((error: unknown) => console.error('twin: scheduled action failed:', error));
    }, ms);
    this.timers.add(timer);
    return () => {
      clearTimeout(timer);
      this.timers.delete(timer);
    };
  }

  cancelAll(): void {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
  }
}

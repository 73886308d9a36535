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

/**
 * Runs AWS's latencies `scale` times as fast. With `jitter` j > 0 each one lasts its nominal time
 * times a factor drawn uniformly from [1 - j, 1 + j] (the mean stays nominal), as AWS's vary from
 * one resource to the next; 0 keeps them exact, for tests.
 */
export class Clock {
  private readonly timers = new Set<NodeJS.Timeout>();
  /** One draw per (latency, start) pair, so repeated checks of one resource agree. */
  private readonly factors = new Map<string, number>();

  constructor(readonly scale: number, readonly jitter = 0, private readonly random: () => number = Math.random) {
    if (!(jitter >= 0 && jitter < 1)) throw new Error('latency jitter must be at least 0 and less than 1');
  }

  /** Milliseconds a latency lasts at this clock's scale, before jitter. */
  ms(name: LatencyName): number {
    return LATENCY[name] * 1000 * this.scale;
  }

  private draw(): number {
    return this.jitter === 0 ? 1 : 1 - this.jitter + 2 * this.jitter * this.random();
  }

  /** True once `name`'s latency has passed since `since`. */
  elapsed(since: Date, name: LatencyName): boolean {
    const key = `${name}@${since.getTime()}`;
    let factor = this.factors.get(key);
    if (factor === undefined) this.factors.set(key, (factor = this.draw()));
    return Date.now() - since.getTime() >= this.ms(name) * factor;
  }

  /** Runs `action` after `name`'s latency (or after `seconds` of AWS time, scaled); returns a cancel. */
  after(delay: LatencyName | { seconds: number }, action: () => void | Promise<void>): () => void {
    // A named latency is AWS's and varies; a given number of seconds (a `shutdown +N`) does not.
    const ms = typeof delay === 'string' ? this.ms(delay) * this.draw() : delay.seconds * 1000 * this.scale;
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

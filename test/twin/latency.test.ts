// The twin's clock: AWS latencies scaled, exact by default, and with jitter varying per resource
// around the nominal value while staying stable for repeated checks of the same resource.
import { describe, it, expect, jest, afterEach } from '@jest/globals';
import { Clock } from './latency.js';

/** A random source that returns the given values in turn. */
const sequence = (...values: number[]) => () => values.shift() ?? 0.5;
const ago = (ms: number) => new Date(Date.now() - ms);

afterEach(() => {
  jest.useRealTimers();
});

describe('Clock.elapsed', () => {
  it('without jitter, a latency lasts exactly its nominal time times the scale', () => {
    const clock = new Clock(0.5);
    // attach: 3 s of AWS time, 1.5 s at scale 0.5.
    expect(clock.elapsed(ago(1_400), 'attach')).toBe(false);
    expect(clock.elapsed(ago(1_500), 'attach')).toBe(true);
  });

  it('with jitter, each resource draws its own duration within the bounds, and keeps it', () => {
    const clock = new Clock(1, 0.2, sequence(0, 0.999_999));
    const first = ago(2_500);
    // First draw 0 → factor 0.8: 2.4 s for this resource.
    expect(clock.elapsed(first, 'attach')).toBe(true);
    // The same resource asked again keeps its factor, though the next draw would be 1.2.
    expect(clock.elapsed(first, 'attach')).toBe(true);
    // Another resource gets the next draw: about 3.6 s.
    expect(clock.elapsed(ago(3_500), 'attach')).toBe(false);
  });

  it('refuses a jitter outside [0, 1)', () => {
    expect(() => new Clock(1, 1)).toThrow(/jitter/);
    expect(() => new Clock(1, -0.1)).toThrow(/jitter/);
  });
});

describe('Clock.after', () => {
  it('varies a named AWS latency but not a given number of seconds', async () => {
    jest.useFakeTimers();
    const clock = new Clock(1, 0.5, sequence(0));
    const fired: string[] = [];
    clock.after('attach', () => void fired.push('attach'));
    clock.after({ seconds: 2 }, () => void fired.push('shutdown'));
    await jest.advanceTimersByTimeAsync(1_499);
    expect(fired).toEqual([]);
    // attach: 3 s × 0.5 (the drawn factor) = 1.5 s; the shutdown stays at its 2 s.
    await jest.advanceTimersByTimeAsync(1);
    expect(fired).toEqual(['attach']);
    await jest.advanceTimersByTimeAsync(500);
    expect(fired).toEqual(['attach', 'shutdown']);
  });
});

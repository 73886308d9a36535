// The one place that waits. Every wait has a deadline carried in the effect's input (so a resumed
// run keeps the original one), polls at ctx.pollSeconds, and stops as soon as ctx.signal aborts.
import { setTimeout as delay } from 'node:timers/promises';
import type { EffectContext } from './context.js';
import { TimeoutError } from './errors.js';

export function throwIfAborted(signal?: AbortSignal): void {
  if (signal?.aborted) {
    const error = new Error('the operation was interrupted');
    error.name = 'AbortError';
    throw error;
  }
}

/** Sleeps one poll interval (never past the deadline); rejects with AbortError on abort. */
export async function pause(ctx: EffectContext, deadlineMs: number): Promise<void> {
  throwIfAborted(ctx.signal);
  const ms = Math.max(0, Math.min(ctx.pollSeconds * 1000, deadlineMs - Date.now()));
  try {
    await delay(ms, undefined, { signal: ctx.signal });
  } catch {
    throwIfAborted(ctx.signal);
  }
}

export function deadlineMs(deadline: string): number {
  const ms = Date.parse(deadline);
  if (Number.isNaN(ms)) throw new Error(`invalid deadline '${deadline}'`);
  return ms;
}

export interface PollOptions {
  deadline: string;
  /** Builds the TimeoutError message; called only when the deadline passes. */
  timeoutMessage: () => string;
}

/**
 * Calls `check` until it returns something other than `undefined`, pausing ctx.pollSeconds between
 * calls. Errors thrown by `check` end the wait (a check that expects transient errors catches them).
 */
export async function pollUntil<T>(ctx: EffectContext, options: PollOptions, check: () => Promise<T | undefined>): Promise<T> {
  const end = deadlineMs(options.deadline);
  for (;;) {
    throwIfAborted(ctx.signal);
    const result = await check();
    if (result !== undefined) return result;
    if (Date.now() >= end) throw new TimeoutError(options.timeoutMessage());
    await pause(ctx, end);
  }
}

/** Options for an SDK `send` so an aborted run cancels the request in flight too. */
export const sendOptions = (ctx: EffectContext) => ({ abortSignal: ctx.signal });

/** Every item of a paginated call, from an SDK paginator (`paginateX({ client }, input, sendOptions(ctx))`). */
export async function allItems<P, I>(pages: AsyncIterable<P>, items: (page: P) => I[] | undefined): Promise<I[]> {
  const collected: I[] = [];
  for await (const page of pages) collected.push(...(items(page) ?? []));
  return collected;
}

// Drives one conversion: runs the statechart with the real actors and persists a checkpoint on
// every snapshot, synchronously, before any request the new state starts has left the process.
// Persistence wraps the actor from outside; the effects know nothing of it.
import { createActor, fromPromise, type AnyActorLogic } from 'xstate';
import { ACTOR_NAMES, conversionMachine, type ActorName, type ConversionContext, type FinalState } from '../machine/conversion.js';
import type { Plan } from '../machine/types.js';
import { appendHistory, CHECKPOINT_SCHEMA, stateName, type Checkpoint, type CheckpointStore } from './checkpoint.js';
import type { EffectContext } from './context.js';

export type Effect = (input: any, ctx: EffectContext) => Promise<unknown>;

/** Wraps each effect as the named promise actor the statechart invokes, giving it the actor's abort signal. */
export function actorsFrom(effects: Record<ActorName, Effect>, base: Omit<EffectContext, 'signal'>): Record<ActorName, AnyActorLogic> {
  return Object.fromEntries(
    ACTOR_NAMES.map((name) => [name, fromPromise(({ input, signal }) => effects[name](input, { ...base, signal }))]),
  ) as Record<ActorName, AnyActorLogic>;
}

export interface DriveOptions {
  store: CheckpointStore;
  actors: Record<ActorName, AnyActorLogic>;
  /** A new run from its plan, an interrupted one from its checkpoint, or the teardown of one. */
  from: { plan: Plan } | { checkpoint: Checkpoint } | { cleanup: Checkpoint };
  onTransition?: (checkpoint: Checkpoint) => void;
}

export interface Drive {
  runId: string;
  /** Stop new work and tear down (the first Ctrl-C). */
  interrupt(reason: string): void;
  /** Write the latest checkpoint now and stop (the second Ctrl-C); the run stays resumable. */
  abandon(): void;
  finished: Promise<{ final: FinalState; context: ConversionContext; checkpoint: Checkpoint }>;
}

export function drive(options: DriveOptions): Drive {
  const { store } = options;
  const { from } = options;
  const previous = 'checkpoint' in from ? from.checkpoint : 'cleanup' in from ? from.cleanup : undefined;
  const plan = previous ? previous.context.plan : (from as { plan: Plan }).plan;
  const release = store.lock(plan.runId);
  const machine = conversionMachine.provide({ actors: options.actors as never });
  const actor =
    'checkpoint' in from
      ? createActor(machine, { snapshot: from.checkpoint.snapshot as never, input: { plan } })
      : 'cleanup' in from
        ? createActor(machine, { input: { cleanupOf: from.cleanup.context } })
        : createActor(machine, { input: { plan } });

  let checkpoint: Checkpoint | undefined = previous;
  const persist = () => {
    const snapshot = actor.getSnapshot();
    const now = new Date().toISOString();
    const state = snapshot.status === 'done' ? String(snapshot.value) : stateName(snapshot.value);
    checkpoint = {
      schema: CHECKPOINT_SCHEMA,
      runId: plan.runId,
      createdAt: previous?.createdAt ?? plan.createdAt,
      updatedAt: now,
      state,
      ...(snapshot.status === 'done' ? { final: snapshot.value as FinalState } : {}),
      ...(snapshot.context.resolved ? { accountId: snapshot.context.resolved.accountId } : previous?.accountId ? { accountId: previous.accountId } : {}),
      region: plan.region,
      context: snapshot.context,
      history: appendHistory(checkpoint?.history ?? [], state, now),
      snapshot: actor.getPersistedSnapshot(),
    };
    store.save(checkpoint);
    options.onTransition?.(checkpoint);
  };

  const finished = new Promise<{ final: FinalState; context: ConversionContext; checkpoint: Checkpoint }>((resolve, reject) => {
    actor.subscribe({
      next: (snapshot) => {
        try {
          persist();
        } catch (error) {
          actor.stop();
          release();
          reject(error);
          return;
        }
        if (snapshot.status === 'done') {
          release();
          resolve({ final: snapshot.value as FinalState, context: snapshot.context, checkpoint: checkpoint! });
        }
      },
      error: (error) => {
        // An error snapshot reaches only this callback: persist it too, so the run can be resumed.
        try { persist(); } catch { /* the original error matters more */ }
        release();
        reject(error);
      },
    });
  });

  actor.start();
  return {
    runId: plan.runId,
    interrupt: (reason) => actor.send({ type: 'INTERRUPT', reason }),
    abandon: () => {
      persist();
      actor.stop();
      release();
    },
    finished,
  };
}

// Runs a conversion to its end (new or resumed), handles Ctrl-C, and turns the final state into
// the user's message and exit code.
import type { ConversionContext, FinalState, Phase } from '../machine/conversion.js';
import type { Plan } from '../machine/types.js';
import { CheckpointStore, defaultStateDir, type Checkpoint } from '../effects/checkpoint.js';
import { createClients, type AwsClients } from '../effects/clients.js';
import type { EffectContext } from '../effects/context.js';
import { actorsFrom, drive } from '../effects/driver.js';
import { describeFailure, EXIT, exitCodeFor, type ExitCode } from './exit.js';
import type { Output } from './output.js';
import type { CommonArgs } from './options.js';
import { askYesNo } from './prompt.js';

export function storeFor(args: CommonArgs): CheckpointStore {
  return new CheckpointStore(args.stateDir ?? defaultStateDir());
}

/** Seconds between polls of AWS state; AMI2DOCKER_POLL_INTERVAL tunes it (e.g. for a fast local endpoint). */
export function pollSeconds(env: NodeJS.ProcessEnv = process.env): number {
  const value = Number(env.AMI2DOCKER_POLL_INTERVAL);
  return Number.isFinite(value) && value > 0 ? value : 2;
}

export function effectContext(plan: Pick<Plan, 'region' | 'profile'>, output: Output): Omit<EffectContext, 'signal'> & { clients: AwsClients } {
  return {
    clients: createClients({ region: plan.region, ...(plan.profile ? { profile: plan.profile } : {}) }),
    report: (event) => output.progress(event),
    pollSeconds: pollSeconds(),
  };
}

export type RunStart = { plan: Plan } | { checkpoint: Checkpoint } | { cleanup: Checkpoint };

export function planOf(from: RunStart): Plan {
  return 'plan' in from ? from.plan : 'checkpoint' in from ? from.checkpoint.context.plan : from.cleanup.context.plan;
}

/**
 * Runs a conversion (new or resumed) or a cleanup to its end. The first Ctrl-C or SIGTERM stops
 * new work and tears down; with `askOnInterrupt` (a person at a terminal) a Ctrl-C first asks
 * whether to tear down or keep everything for `resume`. A second signal exits at once (exit 4).
 */
export async function execute(
  store: CheckpointStore,
  from: RunStart,
  output: Output,
  context = effectContext(planOf(from), output),
  askOnInterrupt = false,
): Promise<ExitCode> {
  const { effects } = await import('../effects/index.js');
  const { runId } = planOf(from);
  output.note(`run ${runId} (checkpoint: ${store.pathOf(runId)})`);
  const run = drive({ store, actors: actorsFrom(effects as never, context), from, onTransition: (c) => output.state(c.runId, c.state) });

  const savedMessage = `run ${runId} is saved; continue it with 'ami2docker resume ${runId}' or remove what it created with 'ami2docker cleanup ${runId}'`;
  let abandoned = false;
  const abandon = () => {
    if (!abandoned) run.abandon();
    abandoned = true;
  };
  const exitNow = () => {
    abandon();
    output.error(`interrupted: ${savedMessage}`, EXIT.interrupted);
    process.exit(EXIT.interrupted);
  };
  let decide!: (outcome: Promise<ExitCode>) => void;
  const decided = new Promise<ExitCode>((resolve, reject) => {
    decide = (outcome) => void outcome.then(resolve, reject);
  });
  const askThenSettle = async (signal: NodeJS.Signals): Promise<ExitCode> => {
    abandon(); // no new work while the person decides; the checkpoint is resumable as it stands
    const remove = await askYesNo(`\n${signal}: run ${runId} stopped. Remove what it created now? (n keeps it for 'ami2docker resume ${runId}')`, true, exitNow);
    if (!remove) {
      output.error(`interrupted: ${savedMessage}`, EXIT.interrupted);
      return EXIT.interrupted;
    }
    const code = await execute(store, { cleanup: store.load(runId) }, output);
    if (code !== EXIT.done) return code;
    // The run was stopped before its image was made: a failure, even with nothing left behind.
    output.error(`interrupted by ${signal}: run ${runId} stopped and what it had created was removed`, EXIT.failed);
    return EXIT.failed;
  };

  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals += 1;
    if (signals > 1) return exitNow();
    if (askOnInterrupt && signal === 'SIGINT') return decide(askThenSettle(signal));
    output.note(`\n${signal}: stopping and removing temporary resources; press Ctrl-C again to exit now and keep a resumable checkpoint`);
    run.interrupt(`interrupted by ${signal}`);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const ended = run.finished.then(({ final, context: finalContext }) => reportOutcome(run.runId, final, finalContext, output));
    return await Promise.race([ended, decided]);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    context.clients.destroy();
  }
}

const PHASE_ORDER: Phase[] = ['resolve', 'provision', 'attach', 'convert', 'verify', 'teardown', 'pull'];

export function formatSeconds(seconds: number): string {
  if (seconds < 60) return `${seconds.toFixed(1)}s`;
  const minutes = Math.floor(seconds / 60);
  return `${minutes}m${String(Math.round(seconds - minutes * 60)).padStart(2, '0')}s`;
}

export function phaseSeconds(context: ConversionContext): Record<string, number> {
  const seconds: Record<string, number> = {};
  for (const phase of PHASE_ORDER) {
    const span = context.phases[phase];
    if (span?.endedAt) seconds[phase] = (Date.parse(span.endedAt) - Date.parse(span.startedAt)) / 1000;
  }
  return seconds;
}

/** The pushed image as the result shows it: JSON fields, and the lines a person reads (pull, run). */
function imageReport(result: NonNullable<ConversionContext['result']>, region: string) {
  const { imageUri, digest, tags } = result;
  const repository = imageUri.split('@')[0]!;
  const registry = repository.split('/')[0]!;
  const pullRef = `${repository}:${tags[0] ?? 'latest'}`;
  return {
    fields: { image: pullRef, imageUri, digest, tags },
    what: [`Image   ${pullRef}`, `Digest  ${digest}`, `Tags    ${tags.join(', ')}`],
    use: [
      `Pull    aws ecr get-login-password --region ${region} | docker login --username AWS --password-stdin ${registry}`,
      `        docker pull ${pullRef}`,
      `Run     docker run --rm -it ${pullRef}`,
    ],
  };
}

function reportOutcome(runId: string, final: FinalState, context: ConversionContext, output: Output): ExitCode {
  const phases = phaseSeconds(context);
  const started = context.mode === 'cleanup' ? context.phases.teardown?.startedAt : context.plan.createdAt;
  const total = (Date.now() - Date.parse(started ?? context.plan.createdAt)) / 1000;
  const base = { runId, status: final, phases, totalSeconds: total, removed: context.removed };

  // The image, when the run made and verified one: reported also when its teardown fell short.
  const image = context.result && !context.error && context.mode === 'convert' ? imageReport(context.result, context.plan.region) : undefined;
  const timeLine = `Time    ${Object.entries(phases).map(([phase, s]) => `${phase} ${formatSeconds(s)}`).join(' · ')} · total ${formatSeconds(total)}`;

  if (final === 'done' && image) {
    output.result({ ...base, ...image.fields, exitCode: EXIT.done }, [...image.what, timeLine, ...image.use]);
    return EXIT.done;
  }

  if (final === 'cleaned') {
    output.result({ ...base, exitCode: EXIT.done }, [
      context.removed.length ? `Removed ${context.removed.join(', ')}` : 'Nothing of this run was left in AWS.',
    ]);
    return EXIT.done;
  }

  const error = context.error ?? { step: 'unknown', name: 'Error', message: 'the run ended without a result' };
  if (final === 'cleanupIncomplete') {
    const leftovers = context.leftovers.map(describeFailure).join('; ');
    output.result({ ...base, ...image?.fields, error, leftovers: context.leftovers, exitCode: EXIT.cleanupIncomplete }, image ? [...image.what, ...image.use] : []);
    const cause = context.error && context.mode === 'convert' ? `${describeFailure(error)}; ` : '';
    output.error(
      `${cause}cleanup incomplete: ${leftovers}. Remove what is left with 'ami2docker cleanup ${runId}'`,
      EXIT.cleanupIncomplete,
    );
    return EXIT.cleanupIncomplete;
  }
  const code = error.step === 'interrupted' ? EXIT.failed : exitCodeFor(error);
  output.result({ ...base, error, exitCode: code }, []);
  if (final === 'kept') {
    const kept = Object.entries(context.resources).filter(([, v]) => typeof v === 'string').map(([k, v]) => `${k} ${v}`).join(', ');
    output.error(`${describeFailure(error)}. Kept for debugging: ${kept}. Remove them with 'ami2docker cleanup ${runId}'`, code);
  } else {
    const next = code === EXIT.usage ? 'fix the input and run the command again' : `see 'ami2docker status ${runId}', fix the cause and run the command again`;
    output.error(`${describeFailure(error)}. Temporary resources were removed; ${next}`, code);
  }
  return code;
}

// SIGKILL at random moments spread over a whole run (in the middle of AWS calls, during the
// conversion, during teardown), then alternately `resume` and `cleanup`.
// AMI2DOCKER_CRASH_SEED replays an earlier matrix; AMI2DOCKER_CRASH_KILLS changes the count (default 30).
import { describe, it } from '@jest/globals';
import {
  cleanRun,
  useCrashEnv,
  expectCleanMatrix,
  matrixTable,
  runMatrix,
  runSpanMs,
  seconds,
  stratifiedMoments,
  type CrashCase,
} from './crash-support.js';

const KILLS = Number(process.env.AMI2DOCKER_CRASH_KILLS ?? 30);
const SEED = Number(process.env.AMI2DOCKER_CRASH_SEED ?? Date.now() % 2 ** 31);

/** `working.provisioning [sg,vol]` → `working.provisioning`, `teardown.removingVolume` → `teardown`. */
function phaseOf(killedAt: string): string {
  const state = killedAt.replace(/^ended first \(|\)$/g, '').split(' ')[0]!;
  return state.split('.').slice(0, state.startsWith('working.') ? 2 : 1).join('.');
}

describe('crash matrix: kills at random moments', () => {
  const env = useCrashEnv('crash-random');

  it(`resumes or cleans up after ${KILLS} kills spread over a run (seed ${SEED})`, async () => {
    const started = Date.now();
    const reference = await cleanRun(env(), 'clean');
    // A little past the clean run's end, so late moments also land in its last teardown steps.
    const span = runSpanMs(reference.checkpoint) * 1.05;
    const cases: CrashCase[] = stratifiedMoments(KILLS, span, SEED).map((afterMs, i) => ({
      id: `R${String(i + 1).padStart(2, '0')}`,
      kill: { afterMs },
      then: i % 2 === 0 ? 'resume' : 'cleanup',
    }));
    const rows = await runMatrix(env(), cases);
    const phases = new Map<string, number>();
    for (const row of rows) phases.set(phaseOf(row.killedAt), (phases.get(phaseOf(row.killedAt)) ?? 0) + 1);
    console.log(`${matrixTable(`Kill at ${KILLS} random moments over ${seconds(span)} (seed ${SEED}; rerun with AMI2DOCKER_CRASH_SEED=${SEED})`, rows)}\n` +
      `kills by phase: ${[...phases].map(([p, n]) => `${p} ${n}`).join(', ')}; clean run ${seconds(reference.ms)}; ` +
      `total ${seconds(Date.now() - started)}; ${env().audit.count} checkpoint versions read`);

    await expectCleanMatrix(env(), rows);
  }, 45 * 60_000);
});

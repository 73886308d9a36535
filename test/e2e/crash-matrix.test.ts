// SIGKILL right after every transition of a clean run is persisted, then `resume` must finish the
// conversion, or `cleanup` must remove everything; either way nothing is leaked or created twice.
import { describe, expect, it } from '@jest/globals';
import { cleanRun, useCrashEnv, expectCleanMatrix, killPointsOf, matrixTable, runMatrix, seconds, type CrashCase } from './crash-support.js';

describe('crash matrix: a kill after each transition of a clean run', () => {
  const env = useCrashEnv('crash-matrix');

  it('resumes to a pushed image, or cleans up, from every kill point, leaking and duplicating nothing', async () => {
    const started = Date.now();
    const reference = await cleanRun(env(), 'clean');
    const states = reference.checkpoint.history.map((h) => h.state);
    console.log(`clean run: ${states.join(' → ')} in ${seconds(reference.ms)}`);
    expect(states[0]).toBe('working.resolving');
    expect(states.at(-1)).toBe('done');

    const points = killPointsOf(reference.checkpoint.history);
    const cases: CrashCase[] = points.flatMap((kill, i) =>
      (['resume', 'cleanup'] as const).map((then) => ({ id: `T${String(i + 1).padStart(2, '0')}`, kill, then })),
    );
    const rows = await runMatrix(env(), cases);
    console.log(`${matrixTable(`Kill after each transition (${points.length} points × resume/cleanup)`, rows)}\n` +
      `total ${seconds(Date.now() - started)}; ${env().audit.count} checkpoint versions read`);

    await expectCleanMatrix(env(), rows);
  }, 45 * 60_000);
});

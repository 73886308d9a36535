// Start-up cost of the CLI: wall time of `ami2docker --help` against `node -e 0`, measured
// alternately in one run so machine noise hits both alike. Prints the ratio of the medians.
// Usage: npm run build && node dist/bench/startup/run.js [runs]
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const runs = Number(process.argv[2] ?? 15);
const bin = fileURLToPath(new URL('../../src/cli/bin.js', import.meta.url));
const TARGET = 3;

function wallMs(args: string[]): number {
  const started = process.hrtime.bigint();
  const result = spawnSync(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  if (result.status !== 0) throw new Error(`node ${args.join(' ')} exited ${result.status}: ${result.stderr}`);
  return Number(process.hrtime.bigint() - started) / 1e6;
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

wallMs(['-e', '0']);
wallMs([bin, '--help']); // warm the file cache for both
const baseline: number[] = [];
const help: number[] = [];
for (let i = 0; i < runs; i++) {
  baseline.push(wallMs(['-e', '0']));
  help.push(wallMs([bin, '--help']));
}
const ratio = median(help) / median(baseline);
console.log(`node -e 0            median ${median(baseline).toFixed(1)} ms over ${runs} runs`);
console.log(`ami2docker --help    median ${median(help).toFixed(1)} ms`);
console.log(`ratio ${ratio.toFixed(2)} (target at most ${TARGET})`);
process.exitCode = ratio <= TARGET ? 0 : 1;

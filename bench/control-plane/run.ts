// Control-plane benchmark: ami2docker's orchestration against two replays of the original tool's
// (fixed 5 s / 10 s polls; in the order of its code, and strictly sequential), all converting the
// same small AMI on a fresh AWS twin whose latencies follow AWS's, scaled. Every tool's poll
// intervals are scaled alike.
//
//   eval "$(scripts/services.sh env)"; npm run build
//   node dist/bench/control-plane/run.js [--rounds 3] [--scale 0.1] [--jitter 0] [--timeline]
//
// --jitter J lets each AWS latency vary by up to ±J of its nominal value (the twin's
// --latency-jitter), as AWS's do; the lower bound then uses the nominal values, so compare medians
// over several rounds. --timeline also prints every AWS request of each tool's median run, for
// finding where time goes.
//
// Run as root with the Docker engine and registry up. "Start to image" is from spawning the tool
// until the pushed image is verified in ECR, before teardown, for every tool (see report.ts).
// Exits 0 whether or not the targets are met: it measures, it does not judge.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { makeDisk } from '../../test/fixtures/disk.js';
import { describeRun, formatSummary, formatTimeline, summarise } from './report.js';
import { TOOLS, measure, stopTools, type Measurement, type Tool } from './twin-run.js';

function options() {
  const { values } = parseArgs({
    options: {
      rounds: { type: 'string', default: '3' },
      scale: { type: 'string', default: '0.1' },
      jitter: { type: 'string', default: '0' },
      timeline: { type: 'boolean', default: false },
    },
  });
  const rounds = Number(values.rounds);
  const scale = Number(values.scale);
  const jitter = Number(values.jitter);
  if (!(Number.isInteger(rounds) && rounds > 0)) throw new Error('--rounds must be a positive integer');
  if (!(scale > 0)) throw new Error('--scale must be a positive number');
  if (!(jitter >= 0 && jitter < 1)) throw new Error('--jitter must be at least 0 and less than 1');
  return { rounds, scale, jitter, timeline: values.timeline! };
}

/** The tools rotated from round to round, so drift in the machine's load hits them alike. */
const orderOf = (round: number): Tool[] => TOOLS.map((_, i) => TOOLS[(i + round) % TOOLS.length]!);

async function main(): Promise<void> {
  const { rounds, scale, jitter, timeline } = options();
  const workDir = await mkdtemp(join(tmpdir(), 'ami2docker-bench-cp-'));
  // On a signal the tool under way is stopped; its measurement fails, and the `finally` blocks
  // below and in measure() stop the twin and remove the work directory.
  let stopping = false;
  const stop = () => {
    stopping = true;
    stopTools();
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    const disk = join(workDir, 'disk.img');
    const built = await makeDisk('gpt-xfs-al2023', disk, { size: '512M' });
    if (!built.built) throw new Error(`cannot build the disk fixture: ${built.skipped}`);
    console.log(`control-plane benchmark: time scale ${scale}; latency jitter ±${jitter * 100}%; polls: ami2docker ${2 * scale} s; replays of the original ${5 * scale} s (volume) / ${10 * scale} s (instance, SSM, command)`);
    console.log('every tool gets an existing instance profile, ECR repository and output bucket (the original took them as --instance-profile / --ecr-registry / --ssm-bucket)');
    const runs = Object.fromEntries(TOOLS.map((tool) => [tool, [] as Measurement[]])) as Record<Tool, Measurement[]>;
    for (let round = 0; round < rounds; round++) {
      for (const tool of orderOf(round)) {
        if (stopping) throw new Error('interrupted');
        const m = await measure(tool, { disk, scale, jitter, workDir });
        runs[tool].push(m);
        console.log(`round ${round + 1}: ${describeRun(m, scale)}`);
      }
    }
    const summaries = TOOLS.map((tool) => summarise(tool, runs[tool], scale));
    console.log(formatSummary(summaries, scale, jitter).join('\n'));
    if (timeline) for (const summary of summaries) console.log(['', ...formatTimeline(summary.medianRun)].join('\n'));
  } finally {
    await rm(workDir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(`bench: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});

// What the control-plane benchmark computes from its measurements: times, the critical-path lower
// bound from the twin's latency model, where each tool spends its time against that model, and the
// AWS requests it made.
import { LATENCY } from '../../test/twin/latency.js';
import type { Measurement, Milestone, Tool } from './twin-run.js';

export const TARGETS = { versusOriginal: 0.6, versusLowerBound: 1.1 } as const;

export const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
};

const seconds = (ms: number) => ms / 1000;
const fmt = (s: number) => s.toFixed(2);

/** "Start to image": spawn of the tool until the pushed image is verified in ECR, before teardown. */
export const toImage = (m: Measurement) => seconds(m.at.image - m.startedAt);
export const toExit = (m: Measurement) => seconds(m.at.exit - m.startedAt);
export const conversionSeconds = (m: Measurement) => seconds(m.conversion.endedAt - m.conversion.startedAt);
/** Start to image less the conversion's own run on the helper: what orchestration alone costs. */
export const orchestration = (m: Measurement) => toImage(m) - conversionSeconds(m);

/**
 * Model seconds from RunInstances until the command can be sent: the SSM agent registers after
 * boot, while the volume (created alongside the boot) attaches once the instance runs.
 */
const helperReadyModel = () =>
  Math.max(LATENCY.instanceBoot + LATENCY.ssmRegistration, Math.max(LATENCY.instanceBoot, LATENCY.volumeCreate) + LATENCY.attach);

/**
 * The fastest any orchestration could be on this twin (pre-existing profile, so no IAM propagation):
 * the helper ready as above, then the command's delivery and start, and the conversion itself (its
 * measured duration). API round trips, process start-up and polling are taken as free.
 */
export function lowerBoundSeconds(scale: number, conversion: number): number {
  return (helperReadyModel() + LATENCY.commandDelivery + LATENCY.commandStart) * scale + conversion;
}

/** The stretches of a run between milestones, each with the time the latency model allows for it. */
export const SEGMENTS: { name: string; from: Milestone | 'start'; to: Milestone; model: (scale: number, m: Measurement) => number }[] = [
  { name: 'start → tool ready (node, modules)', from: 'start', to: 'ready', model: () => 0 },
  { name: 'ready → RunInstances accepted', from: 'ready', to: 'launched', model: () => 0 },
  { name: 'RunInstances → agent online, volume attached', from: 'launched', to: 'attached', model: (s) => helperReadyModel() * s },
  { name: 'attached → command end seen', from: 'attached', to: 'commandDone', model: (s, m) => (LATENCY.commandDelivery + LATENCY.commandStart) * s + conversionSeconds(m) },
  { name: 'command end → image verified', from: 'commandDone', to: 'image', model: () => 0 },
  { name: 'image → exit (teardown)', from: 'image', to: 'exit', model: () => 0 },
];

export const segmentSeconds = (m: Measurement, segment: (typeof SEGMENTS)[number]) =>
  seconds(m.at[segment.to] - (segment.from === 'start' ? m.startedAt : m.at[segment.from]));

export interface CallCounts { total: number; toImage: number; helper: number; byOperation: Record<string, number> }

/** The tool's own requests (signed as the user), whole run and up to the image; the helper's apart. */
export function callCounts(m: Measurement): CallCounts {
  const own = m.calls.filter((call) => call.byTool);
  const byOperation: Record<string, number> = {};
  for (const call of own) byOperation[`${call.service}:${call.operation}`] = (byOperation[`${call.service}:${call.operation}`] ?? 0) + 1;
  return {
    total: own.length,
    toImage: own.filter((call) => call.at <= m.at.image).length,
    helper: m.calls.length - own.length,
    byOperation,
  };
}

export interface Summary {
  tool: Tool;
  toImage: number;
  toExit: number;
  conversion: number;
  orchestration: number;
  lowerBound: number;
  calls: { total: number; toImage: number; helper: number };
  segments: number[];
  /** The run whose time to image is the median: its per-operation counts are shown. */
  medianRun: Measurement;
}

export function summarise(tool: Tool, runs: Measurement[], scale: number): Summary {
  const counts = runs.map(callCounts);
  const byTime = [...runs].sort((a, b) => toImage(a) - toImage(b));
  return {
    tool,
    toImage: median(runs.map(toImage)),
    toExit: median(runs.map(toExit)),
    conversion: median(runs.map(conversionSeconds)),
    orchestration: median(runs.map(orchestration)),
    lowerBound: median(runs.map((m) => lowerBoundSeconds(scale, conversionSeconds(m)))),
    calls: { total: median(counts.map((c) => c.total)), toImage: median(counts.map((c) => c.toImage)), helper: median(counts.map((c) => c.helper)) },
    segments: SEGMENTS.map((segment) => median(runs.map((m) => segmentSeconds(m, segment)))),
    medianRun: byTime[Math.floor(byTime.length / 2)]!,
  };
}

export function describeRun(m: Measurement, scale: number): string {
  const c = callCounts(m);
  return `${m.tool.padEnd(10)} to image ${fmt(toImage(m))} s, with teardown ${fmt(toExit(m))} s; conversion ${fmt(conversionSeconds(m))} s; ` +
    `lower bound ${fmt(lowerBoundSeconds(scale, conversionSeconds(m)))} s; AWS calls ${c.total} (${c.toImage} to image, +${c.helper} by the helper)`;
}

const verdict = (ratio: number, target: number) => `${fmt(ratio)} (target ≤ ${target}: ${ratio <= target ? 'met' : 'NOT met'})`;

/** ami2docker against the latency model's bound, whole and without the conversion's own time. */
export const boundRatios = (a: Summary) => ({
  toImage: a.toImage / a.lowerBound,
  orchestration: a.orchestration / (a.lowerBound - a.conversion),
});

/** ami2docker against one replay of the original; the conversion's own time is the same for both. */
export const replayRatios = (a: Summary, o: Summary) => ({
  toImage: a.toImage / o.toImage,
  /** The best any orchestration could do against this replay on this twin. */
  bound: a.lowerBound / o.toImage,
  orchestration: a.orchestration / o.orchestration,
});

/** ami2docker's summary first, then one per replay of the original: a column each. */
export function formatSummary(summaries: Summary[], scale: number, jitter: number): string[] {
  const [a, ...replays] = summaries as [Summary, ...Summary[]];
  const row = (label: string, cell: (s: Summary) => string, width = 12) => `  ${label.padEnd(29)}${summaries.map((s) => cell(s).padStart(width)).join('')}`;
  const lines = [
    '',
    `medians (seconds)              ${summaries.map((s) => s.tool.padStart(12)).join('')}`,
    row('start to image', (s) => fmt(s.toImage)),
    row('with teardown', (s) => fmt(s.toExit)),
    row('conversion on the helper', (s) => fmt(s.conversion)),
    row('orchestration (less conv.)', (s) => fmt(s.orchestration)),
    row(jitter ? 'lower bound (nominal)' : 'lower bound', (s) => fmt(s.lowerBound)),
    row('AWS calls, whole run', (s) => String(s.calls.total)),
    row('AWS calls, to image', (s) => String(s.calls.toImage)),
    row('calls by the helper itself', (s) => String(s.calls.helper)),
    '',
    `ami2docker / lower bound           ${verdict(boundRatios(a).toImage, TARGETS.versusLowerBound)}`,
  ];
  for (const o of replays) {
    const r = replayRatios(a, o);
    lines.push(
      `ami2docker / ${`${o.tool} replay`.padEnd(22)}${verdict(r.toImage, TARGETS.versusOriginal)}`,
      `  lower bound / ${o.tool} replay ${fmt(r.bound)} (no orchestration can go below this ratio against it at scale ${scale})`,
      `  orchestration alone: ami2docker / ${o.tool} replay ${fmt(r.orchestration)}`,
    );
  }
  lines.push(
    `orchestration alone: ami2docker / its bound ${fmt(boundRatios(a).orchestration)}`,
    '',
    'where the time goes (medians; in brackets what the latency model allows for that stretch)',
    `  ${'segment'.padEnd(46)}${summaries.map((s) => s.tool.padStart(15)).join('')}`,
  );
  SEGMENTS.forEach((segment, i) => {
    const cell = (summary: Summary) => `${fmt(summary.segments[i]!)} [${fmt(segment.model(scale, summary.medianRun))}]`.padStart(15);
    lines.push(`  ${segment.name.padEnd(46)}${summaries.map(cell).join('')}`);
  });
  lines.push('', `AWS calls of the median run, by operation (${summaries.map((s) => s.tool).join(' | ')})`);
  const counts = summaries.map((s) => callCounts(s.medianRun).byOperation);
  for (const op of [...new Set(counts.flatMap((c) => Object.keys(c)))].sort()) {
    lines.push(`  ${op.padEnd(38)}${counts.map((c) => String(c[op] ?? 0).padStart(6)).join('')}`);
  }
  if (a.medianRun.phases) {
    lines.push('', `ami2docker checkpoint phases of the median run (s): ${Object.entries(a.medianRun.phases).map(([p, s]) => `${p} ${fmt(s)}`).join(', ')}`);
  }
  return lines;
}

/** Every request of a run, as seconds from the tool's start, and the run's milestones among them. */
export function formatTimeline(m: Measurement): string[] {
  const events = [
    ...m.calls.map((call) => ({ at: call.at, text: `${call.byTool ? '' : '(helper) '}${call.service}:${call.operation} ${call.status}` })),
    ...Object.entries(m.at).map(([name, at]) => ({ at, text: `── ${name}` })),
    { at: m.conversion.startedAt, text: '── conversion starts on the helper' },
    { at: m.conversion.endedAt, text: '── conversion ends on the helper' },
  ].sort((x, y) => x.at - y.at);
  return [`timeline of the median ${m.tool} run (s from start)`, ...events.map((e) => `  ${fmt(seconds(e.at - m.startedAt)).padStart(7)}  ${e.text}`)];
}

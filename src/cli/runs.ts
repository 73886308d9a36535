// The commands that work on recorded runs: resume, cleanup, list, status.
import type { Checkpoint, CheckpointStore } from '../effects/checkpoint.js';
import { callerIdentity } from '../effects/identity.js';
import type { TaggedResource } from '../effects/orphans.js';
import { HELPER_ROLE_NAME, instanceClientToken, runPolicyName, securityGroupName } from '../machine/names.js';
import { parseDuration } from '../machine/plan.js';
import { askYesNo, canAsk } from './prompt.js';
import { CliError, EXIT, type ExitCode } from './exit.js';
import type { CommonArgs } from './options.js';
import type { Output } from './output.js';
import { effectContext, execute, formatSeconds, phaseSeconds, storeFor } from './run.js';

export type RunArgs = CommonArgs & { runId?: string };
export type CleanupArgs = RunArgs & { all: boolean; orphans: boolean; olderThan: string; yes: boolean; dryRun: boolean };

/** The named run, or the newest that has not ended (saying which). */
function pickRun(store: CheckpointStore, runId: string | undefined, output: Output, purpose: string): Checkpoint {
  if (runId) return store.load(runId);
  const open = store.list().filter((entry) => entry.checkpoint && !entry.checkpoint.final);
  const newest = open.at(-1)?.checkpoint;
  if (!newest) throw new CliError(`no unfinished run to ${purpose} in ${store.runsDir}; see 'ami2docker list'`, EXIT.usage);
  output.note(`${purpose === 'resume' ? 'Resuming' : 'Cleaning up'} the most recent unfinished run, ${newest.runId} (${newest.state}, started ${newest.createdAt})`);
  return newest;
}

/** Nothing that changes AWS happens before the credentials are shown to be the run's account and region. */
async function contextForRun(checkpoint: Checkpoint, args: RunArgs, output: Output) {
  const { plan } = checkpoint.context;
  if (args.region && args.region !== plan.region) {
    throw new CliError(`run ${checkpoint.runId} is in ${plan.region}, not ${args.region}: drop --region or pass --region ${plan.region}`, EXIT.usage);
  }
  const context = effectContext({ region: plan.region, profile: args.profile ?? plan.profile }, output);
  if (checkpoint.accountId) {
    const { accountId } = await callerIdentity(context);
    if (accountId !== checkpoint.accountId) {
      context.clients.destroy();
      throw new CliError(
        `run ${checkpoint.runId} belongs to account ${checkpoint.accountId}, but the current credentials are for ${accountId}: switch credentials (e.g. --profile) and try again`,
        EXIT.usage,
      );
    }
  }
  return context;
}

const ENDED_EXIT: Record<string, ExitCode> = { done: EXIT.done, cleaned: EXIT.done, failed: EXIT.failed, kept: EXIT.failed, cleanupIncomplete: EXIT.cleanupIncomplete };

export async function resume(args: RunArgs, output: Output): Promise<ExitCode> {
  const store = storeFor(args);
  const checkpoint = pickRun(store, args.runId, output, 'resume');
  if (checkpoint.final) {
    const code = ENDED_EXIT[checkpoint.final] ?? EXIT.failed;
    output.result({ runId: checkpoint.runId, status: checkpoint.final, exitCode: code, note: 'already ended; not run again' }, [
      `Run ${checkpoint.runId} already ended (${checkpoint.final}); nothing to resume.${checkpoint.final === 'done' ? '' : ` See 'ami2docker status ${checkpoint.runId}'.`}`,
    ]);
    return code;
  }
  return execute(store, { checkpoint }, output, await contextForRun(checkpoint, args, output), canAsk(args.json));
}

export async function cleanup(args: CleanupArgs, output: Output): Promise<ExitCode> {
  if (args.orphans) return cleanupOrphans(args, output);
  const store = storeFor(args);
  const checkpoint = pickRun(store, args.runId, output, 'clean up');
  const context = await contextForRun(checkpoint, args, output);
  const code = await execute(store, { cleanup: checkpoint }, output, context);
  if (args.all) {
    const { cleanupEffects } = await import('../effects/index.js');
    const { resources } = store.load(checkpoint.runId).context;
    const outcome = await cleanupEffects.removeReusable(
      {
        ...(resources.roleCreated && resources.roleName ? { roleName: resources.roleName, instanceProfileName: resources.instanceProfileName } : {}),
        ...(resources.repository?.created ? { repositoryName: resources.repository.name } : {}),
        ...(resources.bucket?.created ? { bucket: resources.bucket.name } : {}),
      },
      context,
    );
    output.result({ runId: checkpoint.runId, reusable: outcome }, [
      ...outcome.removed.map((what) => `Removed ${what}`),
      ...outcome.skipped.map((s) => `Kept ${s.resource}: ${s.reason}`),
    ]);
  }
  context.clients.destroy();
  return code;
}

/** Runs on this machine that are still being driven, or touched within `olderThan`. */
function activeRunIds(store: CheckpointStore, olderThanSeconds: number): Set<string> {
  const active = new Set<string>();
  for (const entry of store.list()) {
    const updated = entry.checkpoint ? Date.parse(entry.checkpoint.updatedAt) : 0;
    if (store.isLocked(entry.runId) || (entry.checkpoint && !entry.checkpoint.final && Date.now() - updated < olderThanSeconds * 1000)) {
      active.add(entry.runId);
    }
  }
  return active;
}

async function cleanupOrphans(args: CleanupArgs, output: Output): Promise<ExitCode> {
  const store = storeFor(args);
  const olderThan = parseDuration(args.olderThan, '--older-than');
  const { resolveRegion } = await import('./convert.js');
  const region = await resolveRegion(args);
  const context = effectContext({ region, ...(args.profile ? { profile: args.profile } : {}) }, output);
  try {
    const { cleanupEffects, effects } = await import('../effects/index.js');
    const active = activeRunIds(store, olderThan);
    const found = await cleanupEffects.findTaggedResources({}, context);
    const young = (r: TaggedResource) => r.createdAt !== undefined && Date.now() - Date.parse(r.createdAt) < olderThan * 1000;
    const orphans = found.filter((r) => r.runId && !active.has(r.runId) && !young(r));
    const runs = [...new Set(orphans.map((r) => r.runId))];
    const listing = orphans.map((r) => `${r.kind} ${r.id} (run ${r.runId}, ${r.state}${r.createdAt ? `, created ${r.createdAt}` : ''})`);
    if (orphans.length === 0 || args.dryRun) {
      output.result({ status: args.dryRun ? 'listed' : 'nothing-to-do', orphans, exitCode: EXIT.done }, [
        orphans.length ? `Would remove:\n  ${listing.join('\n  ')}` : `No orphaned ami2docker resources in ${region} older than ${args.olderThan}.`,
      ]);
      return EXIT.done;
    }
    if (!args.yes) {
      if (!canAsk(args.json)) {
        throw new CliError(`found ${orphans.length} orphaned resources (${listing.join('; ')}); pass --yes to remove them or --dry-run to only list`, EXIT.usage);
      }
      const remove = await askYesNo(`${listing.join('\n')}\nRemove these ${orphans.length} resources?`, false);
      if (!remove) {
        output.note('Nothing removed.');
        return EXIT.done;
      }
    }
    const removed: string[] = [];
    const leftovers: string[] = [];
    const deadline = new Date(Date.now() + 15 * 60_000).toISOString();
    for (const runId of runs) {
      const ofRun = orphans.filter((r) => r.runId === runId);
      const idOf = (kind: TaggedResource['kind']) => ofRun.find((r) => r.kind === kind)?.id;
      // Same removals, same order as a run's own teardown: instance, volume, security group, run policy.
      const steps = [
        () => effects.removeInstance({ runId, ...(idOf('instance') ? { instanceId: idOf('instance') } : {}), clientToken: instanceClientToken(runId), deadline }, context),
        () => effects.removeVolume({ runId, ...(idOf('volume') ? { volumeId: idOf('volume') } : {}), deadline }, context),
        () => effects.removeSecurityGroup({ runId, ...(idOf('security-group') ? { groupId: idOf('security-group') } : {}), groupName: securityGroupName(runId), deadline }, context),
        () => effects.removeRunPolicy({ roleName: HELPER_ROLE_NAME, runPolicyName: runPolicyName(runId) }, context),
      ];
      for (const step of steps) {
        try {
          removed.push(...(await step()).removed);
        } catch (error) {
          leftovers.push(`${runId}: ${(error as Error).message}`);
        }
      }
    }
    const code = leftovers.length ? EXIT.cleanupIncomplete : EXIT.done;
    output.result({ status: leftovers.length ? 'cleanupIncomplete' : 'cleaned', removed, leftovers, exitCode: code }, [
      ...removed.map((what) => `Removed ${what}`),
      ...leftovers.map((what) => `Could not remove: ${what}`),
    ]);
    return code;
  } finally {
    context.clients.destroy();
  }
}

/** Temporary resources the run may still have in AWS: none once its teardown completed. */
function liveResources(checkpoint: Checkpoint): string[] {
  if (checkpoint.final && ['done', 'failed', 'cleaned'].includes(checkpoint.final)) return [];
  const { resources } = checkpoint.context;
  return [resources.instanceId, resources.volumeId, resources.securityGroupId].filter((id): id is string => Boolean(id));
}

function summary(checkpoint: Checkpoint) {
  const { context } = checkpoint;
  return {
    runId: checkpoint.runId,
    state: checkpoint.final ?? checkpoint.state,
    createdAt: checkpoint.createdAt,
    updatedAt: checkpoint.updatedAt,
    region: checkpoint.region,
    ami: context.resolved?.ami.id ?? context.plan.ami.id ?? context.plan.ami.name,
    image: context.result?.imageUri,
    liveResources: liveResources(checkpoint),
    error: context.error,
  };
}

const age = (iso: string) => formatSeconds((Date.now() - Date.parse(iso)) / 1000);

export async function list(args: CommonArgs, output: Output): Promise<ExitCode> {
  const entries = storeFor(args).list();
  const rows = entries.map((entry) => (entry.checkpoint ? summary(entry.checkpoint) : { runId: entry.runId, state: 'unreadable', error: entry.error }));
  const lines = rows.length
    ? rows.map((row) => {
        const r = row as ReturnType<typeof summary>;
        const what = r.image ?? (r.error ? `${r.error.step}: ${r.error.message}` : '');
        return `${r.runId}  ${String(r.state).padEnd(22)} ${r.createdAt ? age(r.createdAt).padStart(8) : ''}  ${r.ami ?? ''}  ${what}${r.liveResources?.length ? `  live: ${r.liveResources.join(' ')}` : ''}`;
      })
    : ['No runs recorded on this machine.'];
  output.result({ runs: rows, exitCode: EXIT.done }, lines);
  return EXIT.done;
}

export async function status(args: RunArgs, output: Output): Promise<ExitCode> {
  const store = storeFor(args);
  if (!args.runId) throw new CliError('status needs a run id: see \'ami2docker list\'', EXIT.usage);
  const checkpoint = store.load(args.runId);
  const s = summary(checkpoint);
  const { context } = checkpoint;
  const phases = phaseSeconds(context);
  output.result({ ...s, live: store.isLocked(checkpoint.runId), resources: context.resources, phases, history: checkpoint.history, leftovers: context.leftovers }, [
    `Run       ${s.runId} (${store.isLocked(checkpoint.runId) ? 'being driven now' : s.state})`,
    `Started   ${s.createdAt} (${age(s.createdAt)} ago), last change ${s.updatedAt}`,
    `AMI       ${s.ami ?? '?'} in ${s.region}`,
    ...(s.image ? [`Image     ${s.image}`] : []),
    `Resources ${Object.entries(context.resources).map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : v}`).join(' ') || 'none'}`,
    `Live      ${s.liveResources.join(' ') || 'none'}`,
    ...(s.error ? [`Error     ${s.error.step}: ${s.error.name}: ${s.error.message}`] : []),
    ...context.leftovers.map((l) => `Leftover  ${l.step}: ${l.message}`),
    `Phases    ${Object.entries(phases).map(([p, sec]) => `${p} ${formatSeconds(sec)}`).join(' · ') || 'none finished'}`,
    'History',
    ...checkpoint.history.map((h) => `  ${h.at}  ${h.state}`),
  ]);
  return EXIT.done;
}

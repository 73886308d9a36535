// `ami2docker [convert] --ami-name NAME ...`: plan, then run (or, with --dry-run, only resolve).
import { normalisePlan } from '../machine/plan.js';
import type { Resolved } from '../machine/types.js';
import { CliError, EXIT, type ExitCode } from './exit.js';
import type { Output } from './output.js';
import type { ConvertArgs } from './options.js';
import { canAsk } from './prompt.js';
import { effectContext, execute, storeFor } from './run.js';

/** Flag, then AWS_REGION / AWS_DEFAULT_REGION, then the profile's configured region. */
export async function resolveRegion(args: { region?: string; profile?: string }): Promise<string> {
  const fromEnv = args.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION;
  if (fromEnv) return fromEnv;
  const { STSClient } = await import('@aws-sdk/client-sts');
  const client = new STSClient(args.profile ? { profile: args.profile } : {});
  const region = await client.config.region().catch(() => undefined);
  client.destroy();
  if (!region) throw new CliError('no AWS region: pass --region, set AWS_REGION, or set one in your AWS profile', EXIT.usage);
  return region;
}

export async function convert(args: ConvertArgs, output: Output): Promise<ExitCode> {
  const region = await resolveRegion(args);
  const plan = normalisePlan({ ...args, region });
  if (!args.dryRun) return execute(storeFor(args), { plan }, output, effectContext(plan, output), canAsk(args.json));

  const { effects } = await import('../effects/index.js');
  const context = effectContext(plan, output);
  try {
    const resolved = (await effects.resolve({ plan }, context)) as Resolved;
    output.result({ status: 'planned', plan, resolved, exitCode: EXIT.done }, describePlan(resolved, plan.imageTags, plan.tagWithAmiId));
    return EXIT.done;
  } finally {
    context.clients.destroy();
  }
}

function describePlan(resolved: Resolved, tags: string[], tagWithAmiId: boolean): string[] {
  const { ami, subnet } = resolved;
  return [
    `AMI        ${ami.id} '${ami.name}' (owner ${ami.ownerId}, ${ami.architecture}, created ${ami.creationDate})`,
    `Root       ${ami.snapshotId} ${ami.volumeSizeGiB} GiB${ami.encrypted ? ', encrypted' : ''} at ${ami.rootDeviceName}`,
    `Subnet     ${subnet.id} in ${subnet.vpcId}, ${subnet.availabilityZone}`,
    `Helper     ${resolved.instanceType} from ${resolved.helperAmiId}, profile ${resolved.instanceProfile.name}${resolved.instanceProfile.create ? ' (created if missing)' : ''}`,
    `Repository ${resolved.repository.uri ?? resolved.repository.name}${resolved.repository.create ? ' (created if missing)' : ''}`,
    `Tags       ${[...tags, ...(tagWithAmiId ? [ami.id] : [])].join(', ')}`,
    `Output     ${resolved.bucket ? `s3://${resolved.bucket.name}${resolved.bucket.create ? ' (created)' : ''}` : 'SSM command output only (no bucket)'}`,
    'Dry run: nothing was created.',
  ];
}

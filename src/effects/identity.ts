// Who is calling: the account owns every created resource and the partition goes into every ARN.
import { GetCallerIdentityCommand } from '@aws-sdk/client-sts';
import type { EffectContext } from './context.js';
import { sendOptions } from './wait.js';

export interface CallerIdentity { accountId: string; partition: string; arn: string }

export async function callerIdentity(ctx: EffectContext): Promise<CallerIdentity> {
  const answer = await ctx.clients.sts.send(new GetCallerIdentityCommand({}), sendOptions(ctx));
  const arn = answer.Arn ?? '';
  // arn:<partition>:sts::<account>:assumed-role/... ; aws, aws-cn, aws-us-gov, ...
  const partition = arn.split(':')[1] || 'aws';
  return { accountId: answer.Account ?? arn.split(':')[4] ?? '', partition, arn };
}

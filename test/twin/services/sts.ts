// STS: only GetCallerIdentity, which answers for whichever key signed the request.
import type { Call, QueryService } from '../context.js';

export class StsService implements QueryService {
  readonly operations = {
    GetCallerIdentity: (_input: unknown, call: Call) => ({
      UserId: call.caller.userId,
      Account: call.caller.account,
      Arn: call.caller.arn,
    }),
  };
}

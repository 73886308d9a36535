// Which IAM actions a request needs, and the denial each protocol answers with. Besides the
// operation's own action, AWS checks a second one in a few places the tool relies on:
// tag-on-create (ec2:CreateTags, iam:TagRole, ...) and handing a role to an instance (iam:PassRole).
import type { Caller, Input, ServiceName, TwinConfig } from './context.js';
import { AwsError, genericError, type Protocol } from './errors.js';
import type { Decision } from './policy.js';
import { S3_ACTIONS, type S3Route } from './services/s3.js';
import type { IamService } from './services/iam.js';

export interface Permission {
  action: string;
  /** Named in the denial message. */
  resource: string;
}

const EC2_TAGGED_CREATES = new Set(['RunInstances', 'CreateVolume', 'CreateSecurityGroup']);

export function requiredPermissions(
  config: TwinConfig,
  iam: IamService,
  service: ServiceName,
  operation: string,
  input: Input,
  route?: Omit<S3Route, 'operation'>,
): Permission[] {
  const { region, account } = config;
  switch (service) {
    case 'ec2': {
      const resource = `arn:aws:ec2:${region}:${account}:*`;
      const needed = [{ action: `ec2:${operation}`, resource }];
      if (EC2_TAGGED_CREATES.has(operation) && (input.TagSpecifications ?? []).length > 0) needed.push({ action: 'ec2:CreateTags', resource });
      const profile = operation === 'RunInstances' ? instanceProfileOf(iam, input) : undefined;
      const roleName = profile?.roleName;
      if (roleName) needed.push({ action: 'iam:PassRole', resource: iam.roles.get(roleName)?.arn ?? roleName });
      return needed;
    }
    case 'iam': {
      const resource = input.RoleName
        ? `arn:aws:iam::${account}:role/${input.RoleName}`
        : input.InstanceProfileName ? `arn:aws:iam::${account}:instance-profile/${input.InstanceProfileName}` : '*';
      const needed = [{ action: `iam:${operation}`, resource }];
      if (operation === 'CreateRole' && (input.Tags ?? []).length > 0) needed.push({ action: 'iam:TagRole', resource });
      if (operation === 'CreateInstanceProfile' && (input.Tags ?? []).length > 0) needed.push({ action: 'iam:TagInstanceProfile', resource });
      return needed;
    }
    case 'ecr': {
      const resource = input.repositoryName ? `arn:aws:ecr:${region}:${account}:repository/${input.repositoryName}` : '*';
      const needed = [{ action: `ecr:${operation}`, resource }];
      if (operation === 'CreateRepository' && (input.tags ?? []).length > 0) needed.push({ action: 'ecr:TagResource', resource });
      return needed;
    }
    case 'ssm':
      return [{ action: `ssm:${operation}`, resource: `arn:aws:ssm:${region}:${account}:*` }];
    case 'sts':
      return [{ action: `sts:${operation}`, resource: '*' }];
    case 's3': {
      const resource = `arn:aws:s3:::${route?.bucket ?? ''}${route?.key !== undefined ? `/${route.key}` : ''}`;
      const needed = [{ action: S3_ACTIONS[operation]!, resource }];
      if (route?.tagsOnCreate) needed.push({ action: 's3:TagResource', resource });
      return needed;
    }
  }
}

function instanceProfileOf(iam: IamService, input: Input) {
  const spec = input.IamInstanceProfile as { Name?: string; Arn?: string } | undefined;
  if (!spec) return undefined;
  return spec.Arn ? iam.profileByArn(spec.Arn) : iam.profiles.get(spec.Name ?? '');
}

/** Operations AWS answers whatever the caller's policies say. */
export const ALWAYS_ALLOWED = new Set(['sts:GetCallerIdentity']);

export function denial(protocol: Protocol, caller: Caller, permission: Permission, decision: Decision): AwsError {
  const why = decision === 'explicitDeny'
    ? `with an explicit deny in an identity-based policy`
    : `because no identity-based policy allows the ${permission.action} action`;
  const detail = `User: ${caller.arn} is not authorized to perform: ${permission.action} on resource: ${permission.resource} ${why}`;
  return genericError(protocol, 'accessDenied', protocol === 'ec2' ? `You are not authorized to perform this operation. ${detail}` : detail);
}

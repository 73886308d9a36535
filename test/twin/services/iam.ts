// IAM: roles, their attached and inline policies, and instance profiles. Instance profiles carry
// the time they last changed, because EC2 only accepts a profile some seconds after that.
import type { Call, Input, QueryService } from '../context.js';
import { AwsError } from '../errors.js';
import { iamUniqueId } from '../ids.js';
import { managedPolicy, parsePolicy, type PolicyDocument } from '../policy.js';
import { copyTag, type Tag } from '../tags.js';

export interface Role {
  name: string;
  id: string;
  arn: string;
  path: string;
  createDate: Date;
  assumeRolePolicyDocument: string;
  description?: string;
  maxSessionDuration: number;
  tags: Tag[];
  attachedPolicies: string[];
  inlinePolicies: Map<string, string>;
}

export interface InstanceProfile {
  name: string;
  id: string;
  arn: string;
  path: string;
  createDate: Date;
  roleName?: string;
  tags: Tag[];
  /** Creation or the last role change: EC2 sees the profile only some time after this. */
  changedAt: Date;
}

export class IamService implements QueryService {
  readonly roles = new Map<string, Role>();
  readonly profiles = new Map<string, InstanceProfile>();

  constructor(private readonly account: string) {}

  readonly operations = {
    CreateRole: (input: Input, call: Call) => {
      const name = required(input, 'RoleName');
      if (this.roles.has(name)) throw new AwsError('EntityAlreadyExists', `Role with name ${name} already exists.`);
      const document = required(input, 'AssumeRolePolicyDocument');
      parsePolicy(document);
      const path = input.Path ?? '/';
      const role: Role = {
        name,
        id: iamUniqueId('AROA'),
        arn: `arn:aws:iam::${this.account}:role${path}${name}`,
        path,
        createDate: new Date(),
        assumeRolePolicyDocument: document,
        description: input.Description,
        maxSessionDuration: input.MaxSessionDuration ?? 3600,
        tags: (input.Tags ?? []).map(copyTag),
        attachedPolicies: [],
        inlinePolicies: new Map(),
      };
      this.roles.set(name, role);
      call.record({ id: name, created: true, tags: role.tags });
      return { Role: this.roleOutput(role) };
    },

    GetRole: (input: Input) => ({ Role: this.roleOutput(this.role(required(input, 'RoleName'))) }),

    DeleteRole: (input: Input, call: Call) => {
      const role = this.role(required(input, 'RoleName'));
      if (role.attachedPolicies.length > 0) throw new AwsError('DeleteConflict', 'Cannot delete entity, must detach all policies first.');
      if (role.inlinePolicies.size > 0) throw new AwsError('DeleteConflict', 'Cannot delete entity, must delete policies first.');
      if (this.profilesOf(role.name).length > 0) {
        throw new AwsError('DeleteConflict', 'Cannot delete entity, must remove roles from instance profile first.');
      }
      this.roles.delete(role.name);
      call.record({ id: role.name });
      return {};
    },

    AttachRolePolicy: (input: Input, call: Call) => {
      const role = this.role(required(input, 'RoleName'));
      const arn = required(input, 'PolicyArn');
      if (!/^arn:aws[\w-]*:iam::(aws|\d{12}):policy\//.test(arn)) throw new AwsError('InvalidInput', `ARN ${arn} is not valid.`);
      if (!managedPolicy(arn)) throw new AwsError('NoSuchEntity', `Policy ${arn} does not exist or is not attachable.`);
      if (!role.attachedPolicies.includes(arn)) role.attachedPolicies.push(arn);
      call.record({ id: `${role.name}/${arn}` });
      return {};
    },

    DetachRolePolicy: (input: Input, call: Call) => {
      const role = this.role(required(input, 'RoleName'));
      const arn = required(input, 'PolicyArn');
      if (!role.attachedPolicies.includes(arn)) throw new AwsError('NoSuchEntity', `Policy ${arn} was not found.`);
      role.attachedPolicies = role.attachedPolicies.filter((a) => a !== arn);
      call.record({ id: `${role.name}/${arn}` });
      return {};
    },

    ListAttachedRolePolicies: (input: Input) => ({
      AttachedPolicies: this.role(required(input, 'RoleName')).attachedPolicies.map((arn) => ({
        PolicyName: arn.slice(arn.lastIndexOf('/') + 1),
        PolicyArn: arn,
      })),
      IsTruncated: false,
    }),

    PutRolePolicy: (input: Input, call: Call) => {
      const role = this.role(required(input, 'RoleName'));
      const name = required(input, 'PolicyName');
      const document = required(input, 'PolicyDocument');
      parsePolicy(document);
      role.inlinePolicies.set(name, document);
      call.record({ id: `${role.name}/${name}` });
      return {};
    },

    GetRolePolicy: (input: Input) => {
      const role = this.role(required(input, 'RoleName'));
      const name = required(input, 'PolicyName');
      const document = role.inlinePolicies.get(name);
      if (document === undefined) throw new AwsError('NoSuchEntity', `The role policy with name ${name} cannot be found.`);
      // IAM returns policy documents URL-encoded (RFC 3986).
      return { RoleName: role.name, PolicyName: name, PolicyDocument: encodeURIComponent(document) };
    },

    DeleteRolePolicy: (input: Input, call: Call) => {
      const role = this.role(required(input, 'RoleName'));
      const name = required(input, 'PolicyName');
      if (!role.inlinePolicies.delete(name)) throw new AwsError('NoSuchEntity', `The role policy with name ${name} cannot be found.`);
      call.record({ id: `${role.name}/${name}` });
      return {};
    },

    ListRolePolicies: (input: Input) => ({
      PolicyNames: [...this.role(required(input, 'RoleName')).inlinePolicies.keys()],
      IsTruncated: false,
    }),

    CreateInstanceProfile: (input: Input, call: Call) => {
      const name = required(input, 'InstanceProfileName');
      if (this.profiles.has(name)) throw new AwsError('EntityAlreadyExists', `Instance Profile ${name} already exists.`);
      const path = input.Path ?? '/';
      const now = new Date();
      const profile: InstanceProfile = {
        name,
        id: iamUniqueId('AIPA'),
        arn: `arn:aws:iam::${this.account}:instance-profile${path}${name}`,
        path,
        createDate: now,
        tags: (input.Tags ?? []).map(copyTag),
        changedAt: now,
      };
      this.profiles.set(name, profile);
      call.record({ id: name, created: true, tags: profile.tags });
      return { InstanceProfile: this.profileOutput(profile) };
    },

    GetInstanceProfile: (input: Input) => ({ InstanceProfile: this.profileOutput(this.profile(required(input, 'InstanceProfileName'))) }),

    AddRoleToInstanceProfile: (input: Input, call: Call) => {
      const profile = this.profile(required(input, 'InstanceProfileName'));
      const role = this.role(required(input, 'RoleName'));
      if (profile.roleName !== undefined) {
        throw new AwsError('LimitExceeded', 'Cannot exceed quota for InstanceSessionsPerInstanceProfile: 1');
      }
      profile.roleName = role.name;
      profile.changedAt = new Date();
      call.record({ id: `${profile.name}/${role.name}` });
      return {};
    },

    RemoveRoleFromInstanceProfile: (input: Input, call: Call) => {
      const profile = this.profile(required(input, 'InstanceProfileName'));
      const roleName = required(input, 'RoleName');
      if (profile.roleName !== roleName) throw new AwsError('NoSuchEntity', `The role with name ${roleName} cannot be found.`);
      profile.roleName = undefined;
      profile.changedAt = new Date();
      call.record({ id: `${profile.name}/${roleName}` });
      return {};
    },

    DeleteInstanceProfile: (input: Input, call: Call) => {
      const profile = this.profile(required(input, 'InstanceProfileName'));
      if (profile.roleName !== undefined) {
        throw new AwsError('DeleteConflict', 'Cannot delete entity, must remove roles from instance profile first.');
      }
      this.profiles.delete(profile.name);
      call.record({ id: profile.name });
      return {};
    },

    ListInstanceProfilesForRole: (input: Input) => ({
      InstanceProfiles: this.profilesOf(this.role(required(input, 'RoleName')).name).map((p) => this.profileOutput(p)),
      IsTruncated: false,
    }),
  };

  role(name: string): Role {
    const role = this.roles.get(name);
    if (!role) throw new AwsError('NoSuchEntity', `The role with name ${name} cannot be found.`);
    return role;
  }

  profile(name: string): InstanceProfile {
    const profile = this.profiles.get(name);
    if (!profile) throw new AwsError('NoSuchEntity', `Instance Profile ${name} cannot be found.`);
    return profile;
  }

  profileByArn(arn: string): InstanceProfile | undefined {
    return [...this.profiles.values()].find((p) => p.arn === arn);
  }

  /** Every policy document that applies to a role: its inline policies and attached managed ones. */
  roleDocuments(roleName: string): PolicyDocument[] {
    const role = this.roles.get(roleName);
    if (!role) return [];
    return [
      ...[...role.inlinePolicies.values()].map(parsePolicy),
      ...role.attachedPolicies.map(managedPolicy).filter((d): d is PolicyDocument => d !== undefined),
    ];
  }

  private profilesOf(roleName: string): InstanceProfile[] {
    return [...this.profiles.values()].filter((p) => p.roleName === roleName);
  }

  private roleOutput(role: Role): Record<string, unknown> {
    return {
      Path: role.path,
      RoleName: role.name,
      RoleId: role.id,
      Arn: role.arn,
      CreateDate: role.createDate,
      AssumeRolePolicyDocument: encodeURIComponent(role.assumeRolePolicyDocument),
      Description: role.description,
      MaxSessionDuration: role.maxSessionDuration,
      Tags: role.tags.length > 0 ? role.tags : undefined,
    };
  }

  private profileOutput(profile: InstanceProfile): Record<string, unknown> {
    const role = profile.roleName ? this.roles.get(profile.roleName) : undefined;
    return {
      Path: profile.path,
      InstanceProfileName: profile.name,
      InstanceProfileId: profile.id,
      Arn: profile.arn,
      CreateDate: profile.createDate,
      Roles: role ? [this.roleOutput(role)] : [],
      Tags: profile.tags.length > 0 ? profile.tags : undefined,
    };
  }
}

/** A required member, refused the way IAM refuses a missing parameter. */
function required(input: Input, name: string): string {
  const value = input[name];
  if (typeof value !== 'string' || value === '') {
    throw new AwsError('ValidationError', `1 validation error detected: Value null at '${name[0].toLowerCase()}${name.slice(1)}' failed to satisfy constraint: Member must not be null`);
  }
  return value;
}

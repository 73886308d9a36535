// Action-level evaluation of IAM identity policies: an explicit Deny wins, otherwise some Allow
// must match, otherwise the action is implicitly denied. Resources and conditions are not
// evaluated (the twin checks which actions a caller may call, not on what).
import { AwsError } from './errors.js';
import { wildcard } from './services/filters.js';

export interface PolicyStatement {
  Effect: 'Allow' | 'Deny';
  Action?: string | string[];
  NotAction?: string | string[];
  Resource?: unknown;
}

export interface PolicyDocument {
  Version?: string;
  Statement: PolicyStatement | PolicyStatement[];
}

export type Decision = 'allow' | 'explicitDeny' | 'implicitDeny';

export function parsePolicy(text: string): PolicyDocument {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new AwsError('MalformedPolicyDocument', 'Syntax errors in policy.');
  }
  const statements = (doc as PolicyDocument | null)?.Statement;
  if (!statements || (Array.isArray(statements) ? statements : [statements]).some((s) => s.Effect !== 'Allow' && s.Effect !== 'Deny')) {
    throw new AwsError('MalformedPolicyDocument', 'Policy document must have Statement entries with Effect Allow or Deny.');
  }
  return doc as PolicyDocument;
}

export function evaluate(documents: PolicyDocument[], action: string): Decision {
  let allowed = false;
  for (const doc of documents) {
    const statements = Array.isArray(doc.Statement) ? doc.Statement : [doc.Statement];
    for (const statement of statements) {
      if (!statementMatches(statement, action)) continue;
      if (statement.Effect === 'Deny') return 'explicitDeny';
      allowed = true;
    }
  }
  return allowed ? 'allow' : 'implicitDeny';
}

function statementMatches(statement: PolicyStatement, action: string): boolean {
  const matches = (patterns: string | string[]) =>
    (Array.isArray(patterns) ? patterns : [patterns]).some((p) => wildcard(p.toLowerCase()).test(action.toLowerCase()));
  if (statement.Action !== undefined) return matches(statement.Action);
  if (statement.NotAction !== undefined) return !matches(statement.NotAction);
  return false;
}

const allow = (...actions: string[]): PolicyDocument => ({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: actions, Resource: '*' }] });

/**
 * The AWS managed policies a helper role is likely to be given, reduced to their actions.
 * Attaching any other `arn:aws:iam::aws:policy/...` is refused as AWS refuses a policy that does
 * not exist, so a misspelt ARN fails here as it would there.
 */
export const MANAGED_POLICIES: Record<string, PolicyDocument> = {
  AmazonSSMManagedInstanceCore: allow(
    'ssm:DescribeAssociation', 'ssm:GetDeployablePatchSnapshotForInstance', 'ssm:GetDocument', 'ssm:DescribeDocument',
    'ssm:GetManifest', 'ssm:GetParameter', 'ssm:GetParameters', 'ssm:ListAssociations', 'ssm:ListInstanceAssociations',
    'ssm:PutInventory', 'ssm:PutComplianceItems', 'ssm:PutConfigurePackageResult', 'ssm:UpdateAssociationStatus',
    'ssm:UpdateInstanceAssociationStatus', 'ssm:UpdateInstanceInformation', 'ssmmessages:*', 'ec2messages:*',
  ),
  AmazonEC2RoleforSSM: allow('ssm:*', 'ec2messages:*', 'ssmmessages:*', 's3:GetObject', 's3:PutObject', 's3:ListBucket', 's3:GetBucketLocation', 'ec2:DescribeInstanceStatus'),
  AmazonSSMFullAccess: allow('ssm:*', 'ec2messages:*', 'ssmmessages:*', 'ec2:DescribeInstances', 'iam:PassRole'),
  AmazonEC2ContainerRegistryPowerUser: allow(
    'ecr:GetAuthorizationToken', 'ecr:BatchCheckLayerAvailability', 'ecr:GetDownloadUrlForLayer', 'ecr:GetRepositoryPolicy',
    'ecr:DescribeRepositories', 'ecr:ListImages', 'ecr:DescribeImages', 'ecr:BatchGetImage', 'ecr:GetLifecyclePolicy',
    'ecr:GetLifecyclePolicyPreview', 'ecr:ListTagsForResource', 'ecr:DescribeImageScanFindings', 'ecr:InitiateLayerUpload',
    'ecr:UploadLayerPart', 'ecr:CompleteLayerUpload', 'ecr:PutImage',
  ),
  AmazonEC2ContainerRegistryFullAccess: allow('ecr:*'),
  AmazonEC2ContainerRegistryReadOnly: allow(
    'ecr:GetAuthorizationToken', 'ecr:BatchCheckLayerAvailability', 'ecr:GetDownloadUrlForLayer', 'ecr:GetRepositoryPolicy',
    'ecr:DescribeRepositories', 'ecr:ListImages', 'ecr:DescribeImages', 'ecr:BatchGetImage', 'ecr:ListTagsForResource',
  ),
  AmazonS3FullAccess: allow('s3:*', 's3-object-lambda:*'),
  AmazonS3ReadOnlyAccess: allow('s3:Get*', 's3:List*', 's3:Describe*'),
  CloudWatchAgentServerPolicy: allow('cloudwatch:PutMetricData', 'ec2:DescribeVolumes', 'ec2:DescribeTags', 'logs:*', 'ssm:GetParameter'),
  AdministratorAccess: allow('*'),
  PowerUserAccess: { Version: '2012-10-17', Statement: [{ Effect: 'Allow', NotAction: ['iam:*', 'organizations:*', 'account:*'] }] },
};

export function managedPolicy(arn: string): PolicyDocument | undefined {
  const match = /^arn:aws:iam::aws:policy\/(?:[\w+=,.@-]+\/)*([\w+=,.@-]+)$/.exec(arn);
  return match && Object.hasOwn(MANAGED_POLICIES, match[1]) ? MANAGED_POLICIES[match[1]] : undefined;
}

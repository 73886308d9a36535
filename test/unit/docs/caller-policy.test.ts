// The README's caller policy must allow every AWS operation the source sends, and nothing broader
// than needed (no service-wide wildcards).
import { describe, expect, it } from '@jest/globals';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readmeCallerPolicy } from '../../support/e2e.js';

const root = process.cwd();

/** IAM actions whose name differs from the SDK command, or that an operation needs besides its own. */
const ACTIONS_OF: Record<string, string[]> = {
  's3:HeadBucket': ['s3:ListBucket'],
  's3:ListObjectsV2': ['s3:ListBucket'],
  's3:DeleteObjects': ['s3:DeleteObject'],
  'ec2:RunInstances': ['ec2:RunInstances', 'ec2:CreateTags', 'iam:PassRole'],
  'ec2:CreateVolume': ['ec2:CreateVolume', 'ec2:CreateTags'],
  'ec2:CreateSecurityGroup': ['ec2:CreateSecurityGroup', 'ec2:CreateTags'],
  'iam:CreateRole': ['iam:CreateRole', 'iam:TagRole'],
  'iam:CreateInstanceProfile': ['iam:CreateInstanceProfile', 'iam:TagInstanceProfile'],
  'ecr:CreateRepository': ['ecr:CreateRepository', 'ecr:TagResource'],
  's3:CreateBucket': ['s3:CreateBucket', 's3:TagResource'],
};
const SERVICE_OF: Record<string, string> = { 'client-ec2': 'ec2', 'client-ssm': 'ssm', 'client-s3': 's3', 'client-iam': 'iam', 'client-ecr': 'ecr', 'client-sts': 'sts' };

function operationsInSource(): string[] {
  const operations = new Set<string>();
  const dirs = ['src/effects', 'src/cli'];
  for (const dir of dirs) {
    for (const file of readdirSync(join(root, dir)).filter((f) => f.endsWith('.ts'))) {
      const text = readFileSync(join(root, dir, file), 'utf8');
      for (const match of text.matchAll(/import\s*{([^}]*)}\s*from\s*'@aws-sdk\/(client-[a-z0-9]+)'/g)) {
        const service = SERVICE_OF[match[2]!];
        if (!service) continue;
        for (const name of match[1]!.split(',').map((s) => s.trim().replace(/^type\s+/, ''))) {
          if (name.endsWith('Command')) operations.add(`${service}:${name.slice(0, -'Command'.length)}`);
          // An SDK paginator sends its operation's command.
          if (name.startsWith('paginate')) operations.add(`${service}:${name.slice('paginate'.length)}`);
        }
      }
    }
  }
  return [...operations].sort();
}

describe('the caller policy in the README', () => {
  const policy = readmeCallerPolicy();
  const allowed = new Set(policy.Statement.flatMap((s) => s.Action));

  it('allows every operation the source sends', () => {
    const operations = operationsInSource();
    expect(operations.length).toBeGreaterThan(40);
    const missing = operations.flatMap((op) => ACTIONS_OF[op] ?? [op]).filter((action) => !allowed.has(action));
    expect(missing).toEqual([]);
  });

  it('names actions one by one, never a service wildcard', () => {
    for (const action of allowed) expect(action).toMatch(/^[a-z0-9]+:[A-Za-z0-9]+$/);
  });
});

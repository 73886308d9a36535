// The control API under /__twin/ (a path no AWS operation uses), in plain JSON:
//   GET    /__twin/resources           every live resource by kind, tags as objects
//   GET    /__twin/history             every mutating call: resource, created or reused, tags, error
//   GET|POST|DELETE /__twin/faults     see faults.ts for what a POST body may hold
//   POST|DELETE /__twin/policy         the caller's IAM policy document (DELETE: allow everything)
//   POST   /__twin/shutdown-instance   { instanceId, minutes, cancel? }: the instances' `shutdown`
import type { ServerResponse } from 'node:http';
import { parsePolicy } from './policy.js';
import { tagRecord } from './tags.js';
import type { Twin } from './twin.js';

export async function handleControl(twin: Twin, method: string, url: URL, body: Buffer, res: ServerResponse): Promise<void> {
  const reply = (status: number, value: unknown) => {
    res.writeHead(status, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify(value));
  };
  try {
    const route = `${method} ${url.pathname}`;
    const json = () => (body.length > 0 ? JSON.parse(body.toString('utf8')) : {});
    switch (route) {
      case 'GET /__twin/resources':
        return reply(200, resources(twin));
      case 'GET /__twin/history':
        return reply(200, twin.history);
      case 'GET /__twin/faults':
        return reply(200, twin.faults.describe());
      case 'POST /__twin/faults':
        twin.faults.add(json());
        return reply(200, twin.faults.describe());
      case 'DELETE /__twin/faults':
        twin.faults.clear();
        return reply(200, twin.faults.describe());
      case 'POST /__twin/policy':
        twin.policy = parsePolicy(body.toString('utf8'));
        return reply(200, twin.policy);
      case 'DELETE /__twin/policy':
        twin.policy = undefined;
        return reply(200, {});
      case 'POST /__twin/shutdown-instance': {
        const { instanceId, minutes, cancel } = json() as { instanceId: string; minutes?: number; cancel?: boolean };
        twin.scheduleShutdown(instanceId, Number(minutes ?? 1), Boolean(cancel));
        return reply(200, { instanceId, minutes, cancel: Boolean(cancel) });
      }
      default:
        return reply(404, { error: `no control route ${route}` });
    }
  } catch (error) {
    return reply(400, { error: error instanceof Error ? error.message : String(error) });
  }
}

function resources(twin: Twin): Record<string, unknown[]> {
  const { ec2, iam, ecr, s3, ssm } = twin;
  return {
    instances: [...ec2.instances.values()].map((i) => ({
      id: i.id,
      state: i.state,
      imageId: i.imageId,
      availabilityZone: i.az,
      instanceProfile: i.profile?.name,
      shutdownBehavior: i.shutdownBehavior,
      tags: tagRecord(i.tags),
    })),
    volumes: [...ec2.volumes.values()].map((v) => ({
      id: v.id,
      state: v.state,
      root: v.root,
      availabilityZone: v.az,
      snapshotId: v.snapshotId,
      attachment: v.attachment ? { ...v.attachment } : undefined,
      tags: tagRecord(v.tags),
    })),
    // The seeded `default` groups are part of the account, not something anyone created.
    securityGroups: [...ec2.groups.values()].filter((g) => g.name !== 'default').map((g) => ({ id: g.id, name: g.name, vpcId: g.vpcId, tags: tagRecord(g.tags) })),
    roles: [...iam.roles.values()].map((r) => ({
      name: r.name,
      attachedPolicies: r.attachedPolicies,
      inlinePolicies: [...r.inlinePolicies.keys()],
      tags: tagRecord(r.tags),
    })),
    instanceProfiles: [...iam.profiles.values()].map((p) => ({ name: p.name, role: p.roleName, tags: tagRecord(p.tags) })),
    repositories: [...ecr.repositories.values()].map((r) => ({ name: r.name, uri: ecr.repositoryUri(r.name), tags: tagRecord(r.tags) })),
    buckets: [...s3.buckets.values()].map((b) => ({ name: b.name, tags: tagRecord(b.tags), keys: [...b.objects.keys()] })),
    commands: [...ssm.commands.values()].map((c) => ({
      id: c.id,
      comment: c.comment,
      status: ssm.commandStatus(c),
      instanceIds: c.invocations.map((i) => i.instanceId),
    })),
  };
}

// Deterministic names and tokens derived from the run id: a process that restarts after a crash
// derives the same ones and so finds, rather than duplicates, what an earlier attempt created.
import type { ResourceTags } from './types.js';

export const TAG_RUN_ID = 'ami2docker:run-id';
export const TAG_CREATED_BY = 'ami2docker:created-by';
export const TAG_EXPIRES_AT = 'ami2docker:expires-at';
export const CREATED_BY = 'ami2docker';

/** Shared helper role and instance profile; kept between runs for reuse. */
export const HELPER_ROLE_NAME = 'ami2docker-helper';
export const ATTACH_DEVICE = '/dev/sdf';

export const instanceClientToken = (runId: string) => `ami2docker-${runId}-instance`;
export const volumeClientToken = (runId: string) => `ami2docker-${runId}-volume`;
export const securityGroupName = (runId: string) => `ami2docker-${runId}`;
export const runPolicyName = (runId: string) => `ami2docker-run-${runId}`;
export const outputPrefix = (runId: string) => `ami2docker/${runId}/`;
export const commandComment = (runId: string) => `ami2docker ${runId}`;

/** `20261204-194501-3f9a`: sortable by start time, valid in every AWS name it is put in. */
export function newRunId(now: Date, random: () => number = Math.random): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  const suffix = Math.floor(random() * 0x10000).toString(16).padStart(4, '0');
  return `${stamp}-${suffix}`;
}

/**
 * ECR repository names: 2-256 chars of lowercase letters, digits and `._-/`, each path component
 * starting and ending with a letter or digit.
 */
export function repositoryNameFromAmiName(amiName: string): string {
  const components = amiName
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '') // é → e rather than a dash
    .toLowerCase()
    .split('/')
    .map((part) => part.replace(/[^a-z0-9._-]+/g, '-').replace(/[._-]{2,}/g, '-').replace(/^[._-]+|[._-]+$/g, ''))
    .filter((part) => part.length > 0);
  let name = components.join('/').slice(0, 256).replace(/[._/-]+$/, '');
  if (name.length < 2) name = `ami-${name || 'image'}`;
  return name;
}

export function resourceTags(runId: string, expiresAt: string, name: string): ResourceTags {
  return { runId, expiresAt, name };
}

/** The tag list in the `{ Key, Value }` shape every AWS API here takes. */
export function tagList(tags: ResourceTags): { Key: string; Value: string }[] {
  return [
    { Key: TAG_RUN_ID, Value: tags.runId },
    { Key: TAG_CREATED_BY, Value: CREATED_BY },
    { Key: TAG_EXPIRES_AT, Value: tags.expiresAt },
    { Key: 'Name', Value: tags.name },
  ];
}

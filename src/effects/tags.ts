// Reading the run tags back from what AWS returns, and the filters that find tagged resources.
import { TAG_CREATED_BY, TAG_EXPIRES_AT, TAG_RUN_ID, CREATED_BY, tagList } from '../machine/names.js';
import type { ResourceTags } from '../machine/types.js';

type TagLike = { Key?: string; Value?: string };

export const tagValue = (tags: TagLike[] | undefined, key: string): string | undefined =>
  tags?.find((tag) => tag.Key === key)?.Value;

export const carriesRunId = (tags: TagLike[] | undefined, runId: string): boolean => tagValue(tags, TAG_RUN_ID) === runId;

export const createdByUs = (tags: TagLike[] | undefined): boolean => tagValue(tags, TAG_CREATED_BY) === CREATED_BY;

/** EC2 filter for resources of one run. */
export const runIdFilter = (runId: string) => ({ Name: `tag:${TAG_RUN_ID}`, Values: [runId] });

/**
 * Tags for resources kept between runs (role, profile, repository, bucket): they never expire, so
 * they do not carry `expires-at`, which would invite a reaper to remove what later runs rely on.
 * The run id stays as provenance.
 */
export const reusableTagList = (tags: ResourceTags) => tagList(tags).filter((tag) => tag.Key !== TAG_EXPIRES_AT);

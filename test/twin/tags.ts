// Tags as every API here spells them ({ Key, Value }), and the ways requests carry them.

export interface Tag {
  Key: string;
  Value: string;
}

interface TagSpecification {
  ResourceType?: string;
  Tags?: Tag[];
}

/** The tags an EC2 TagSpecification list gives one resource type. */
export function tagsFor(specs: TagSpecification[] | undefined, resourceType: string): Tag[] {
  return (specs ?? []).filter((spec) => spec.ResourceType === resourceType).flatMap((spec) => spec.Tags ?? []).map(copyTag);
}

export function copyTag(tag: { Key?: string; Value?: string }): Tag {
  return { Key: tag.Key ?? '', Value: tag.Value ?? '' };
}

export function tagRecord(tags: Tag[]): Record<string, string> {
  return Object.fromEntries(tags.map((tag) => [tag.Key, tag.Value]));
}

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

/** Sets or replaces tags by key, keeping the order they were first given in. */
export function mergeTags(existing: Tag[], added: Tag[]): Tag[] {
  const out = existing.map(copyTag);
  for (const tag of added) {
    const found = out.find((t) => t.Key === tag.Key);
    if (found) found.Value = tag.Value;
    else out.push(copyTag(tag));
  }
  return out;
}

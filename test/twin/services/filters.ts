// EC2 Describe* filtering: Filter.N.Name with Filter.N.Value.M. Filters are ANDed, values ORed,
// values may hold `*` and `?` wildcards, and `tag:KEY` / `tag-key` apply to every taggable kind.
// A filter name the twin does not know is refused as EC2 refuses a misspelt one.
import { AwsError } from '../errors.js';
import type { Tag } from '../tags.js';

export interface Filter {
  Name?: string;
  Values?: string[];
}

type Scalar = string | number | boolean | Date | undefined;

/** For each filter name a resource kind supports: the value(s) a resource has for it. */
export type FilterFields<T> = Record<string, (item: T) => Scalar | Scalar[]>;

export function applyFilters<T extends { tags: Tag[] }>(items: T[], filters: Filter[] | undefined, fields: FilterFields<T>): T[] {
  const checks = (filters ?? []).map((filter) => compile(filter, fields));
  return items.filter((item) => checks.every((check) => check(item)));
}

function compile<T extends { tags: Tag[] }>(filter: Filter, fields: FilterFields<T>): (item: T) => boolean {
  const name = filter.Name ?? '';
  const patterns = (filter.Values ?? []).map(wildcard);
  const anyMatches = (values: Scalar[]) => values.some((v) => v !== undefined && patterns.some((p) => p.test(text(v))));
  if (name.startsWith('tag:')) {
    const key = name.slice(4);
    return (item) => anyMatches(item.tags.filter((t) => t.Key === key).map((t) => t.Value));
  }
  if (name === 'tag-key') return (item) => anyMatches(item.tags.map((t) => t.Key));
  if (name === 'tag-value') return (item) => anyMatches(item.tags.map((t) => t.Value));
  const field = Object.hasOwn(fields, name) ? fields[name] : undefined;
  if (!field) throw new AwsError('InvalidParameterValue', `The filter '${name}' is invalid`);
  return (item) => {
    const value = field(item);
    return anyMatches(Array.isArray(value) ? value : [value]);
  };
}

function text(value: Scalar): string {
  if (value instanceof Date) return value.toISOString();
  return String(value);
}

/** `*` any run of characters, `?` one character, `\*` / `\?` the characters themselves. */
export function wildcard(pattern: string): RegExp {
  let source = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '\\' && i + 1 < pattern.length) source += escapeRegExp(pattern[++i]);
    else if (c === '*') source += '[\\s\\S]*';
    else if (c === '?') source += '[\\s\\S]';
    else source += escapeRegExp(c);
  }
  return new RegExp(`^${source}$`);
}

function escapeRegExp(c: string): string {
  return c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

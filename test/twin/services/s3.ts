// S3: buckets with tags and objects, in memory. Only what a tool that keeps command output in a
// bucket needs, but with S3's own answers (us-east-1's silent re-create, NoSuchTagSet, 204s).
import { createHash } from 'node:crypto';
import type { Call, TwinConfig } from '../context.js';
import { AwsError } from '../errors.js';
import { decodeAwsChunked, isAwsChunked, parseXml, xmlDocument, type RestRequest, type RestResponse } from '../protocols/restxml.js';
import { copyTag, type Tag } from '../tags.js';

interface StoredObject {
  body: Buffer;
  etag: string;
  lastModified: Date;
  contentType: string;
  metadata: Record<string, string>;
}

export interface Bucket {
  name: string;
  region: string;
  createdAt: Date;
  tags: Tag[];
  objects: Map<string, StoredObject>;
}

export interface S3Route {
  operation: string;
  bucket: string;
  key?: string;
  /** CreateBucket with tags in its configuration: S3 also checks s3:TagResource. */
  tagsOnCreate?: boolean;
}

/** IAM actions S3 checks for each operation. */
export const S3_ACTIONS: Record<string, string> = {
  HeadBucket: 's3:ListBucket',
  CreateBucket: 's3:CreateBucket',
  DeleteBucket: 's3:DeleteBucket',
  GetBucketLocation: 's3:GetBucketLocation',
  PutBucketTagging: 's3:PutBucketTagging',
  GetBucketTagging: 's3:GetBucketTagging',
  DeleteBucketTagging: 's3:PutBucketTagging',
  ListObjectsV2: 's3:ListBucket',
  PutObject: 's3:PutObject',
  GetObject: 's3:GetObject',
  HeadObject: 's3:GetObject',
  DeleteObject: 's3:DeleteObject',
  DeleteObjects: 's3:DeleteObject',
};

/** The tags a CreateBucket request's configuration carries. */
function creationTags(body: Buffer): Tag[] {
  if (body.length === 0) return [];
  const configuration = parseXml(body).CreateBucketConfiguration as { Tags?: { Tag?: Tag[] } } | undefined;
  return (configuration?.Tags?.Tag ?? []).map(copyTag);
}

export class S3Service {
  readonly buckets = new Map<string, Bucket>();

  constructor(private readonly config: TwinConfig) {}

  /** Which operation a request is, from its method, path and sub-resources. */
  route(request: RestRequest): S3Route {
    const [, rawBucket = '', ...rest] = request.path.split('/');
    const bucket = decodeURIComponent(rawBucket);
    const key = rest.length > 0 && rest.join('/') !== '' ? decodeURIComponent(rest.join('/')) : undefined;
    const q = request.query;
    const m = request.method;
    if (!bucket) throw new AwsError('NotImplemented', 'ListBuckets is not supported by this endpoint.', 501);
    if (key === undefined) {
      if (q.has('tagging')) return { operation: m === 'PUT' ? 'PutBucketTagging' : m === 'DELETE' ? 'DeleteBucketTagging' : 'GetBucketTagging', bucket };
      if (q.has('location') && m === 'GET') return { operation: 'GetBucketLocation', bucket };
      if (q.has('delete') && m === 'POST') return { operation: 'DeleteObjects', bucket };
      if (m === 'HEAD') return { operation: 'HeadBucket', bucket };
      if (m === 'PUT') return { operation: 'CreateBucket', bucket, tagsOnCreate: creationTags(request.body).length > 0 };
      if (m === 'DELETE') return { operation: 'DeleteBucket', bucket };
      if (m === 'GET' && q.get('list-type') === '2') return { operation: 'ListObjectsV2', bucket };
    } else {
      const byMethod: Record<string, string> = { PUT: 'PutObject', GET: 'GetObject', HEAD: 'HeadObject', DELETE: 'DeleteObject' };
      if (byMethod[m] && !q.has('tagging') && !q.has('uploads') && !q.has('uploadId')) return { operation: byMethod[m], bucket, key };
    }
    throw new AwsError('NotImplemented', `${m} ${request.path}?${q.toString()} is not supported by this endpoint.`, 501);
  }

  handle(route: S3Route, request: RestRequest, call: Call): RestResponse {
    const { bucket: name, key } = route;
    switch (route.operation) {
      case 'CreateBucket':
        return this.createBucket(name, request.body, call);
      case 'HeadBucket':
        return { status: 200, headers: { 'x-amz-bucket-region': this.bucket(name).region } };
      case 'DeleteBucket': {
        const bucket = this.bucket(name);
        if (bucket.objects.size > 0) throw new AwsError('BucketNotEmpty', 'The bucket you tried to delete is not empty', 409, { BucketName: name });
        this.buckets.delete(name);
        call.record({ id: name });
        return { status: 204 };
      }
      case 'GetBucketLocation': {
        const region = this.bucket(name).region;
        return xml('LocationConstraint', { '#text': region === 'us-east-1' ? '' : region });
      }
      case 'PutBucketTagging': {
        const bucket = this.bucket(name);
        const tagSet = (parseXml(request.body).Tagging as { TagSet?: { Tag?: Tag[] } } | undefined)?.TagSet;
        bucket.tags = (tagSet?.Tag ?? []).map(copyTag);
        call.record({ id: name, tags: bucket.tags });
        return { status: 204 };
      }
      case 'GetBucketTagging': {
        const bucket = this.bucket(name);
        if (bucket.tags.length === 0) throw new AwsError('NoSuchTagSet', 'The TagSet does not exist', 404, { BucketName: name });
        return xml('Tagging', { TagSet: { Tag: bucket.tags } });
      }
      case 'DeleteBucketTagging':
        this.bucket(name).tags = [];
        return { status: 204 };
      case 'ListObjectsV2':
        return this.listObjects(this.bucket(name), request.query);
      case 'PutObject':
        return this.putObjectRequest(name, key!, request, call);
      case 'GetObject':
      case 'HeadObject':
        return this.getObject(this.bucket(name), key!, request, route.operation === 'HeadObject');
      case 'DeleteObject':
        this.bucket(name).objects.delete(key!);
        return { status: 204 };
      case 'DeleteObjects':
        return this.deleteObjects(this.bucket(name), request.body);
      default:
        throw new AwsError('NotImplemented', `${route.operation} is not supported by this endpoint.`, 501);
    }
  }

  /** Writes an object directly (SSM's agent uploading command output); false when the bucket is gone. */
  putObject(bucketName: string, key: string, body: Buffer, contentType = 'text/plain'): boolean {
    const bucket = this.buckets.get(bucketName);
    if (!bucket) return false;
    bucket.objects.set(key, storedObject(body, contentType, {}));
    return true;
  }

  private bucket(name: string): Bucket {
    const bucket = this.buckets.get(name);
    if (!bucket) throw new AwsError('NoSuchBucket', 'The specified bucket does not exist', 404, { BucketName: name });
    return bucket;
  }

  private createBucket(name: string, body: Buffer, call: Call): RestResponse {
    if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(name) || name.includes('..') || /^\d+\.\d+\.\d+\.\d+$/.test(name)) {
      throw new AwsError('InvalidBucketName', 'The specified bucket is not valid.', 400, { BucketName: name });
    }
    const configuration = parseXml(body).CreateBucketConfiguration as { LocationConstraint?: string } | undefined;
    const tags = creationTags(body);
    const constraint = configuration?.LocationConstraint || undefined;
    const region = this.config.region;
    if (region === 'us-east-1' && constraint !== undefined) {
      throw new AwsError('InvalidLocationConstraint', 'The specified location-constraint is not valid', 400);
    }
    if (region !== 'us-east-1' && constraint !== region) {
      throw new AwsError('IllegalLocationConstraintException', `The ${constraint ?? 'unspecified'} location constraint is incompatible for the region specific endpoint this request was sent to.`, 400);
    }
    const existing = this.buckets.get(name);
    if (existing) {
      // us-east-1 keeps S3's original behaviour: creating a bucket you already own succeeds.
      if (region === 'us-east-1') {
        call.record({ id: name, created: false });
        return { status: 200, headers: { Location: `/${name}` } };
      }
      throw new AwsError('BucketAlreadyOwnedByYou', 'Your previous request to create the named bucket succeeded and you already own it.', 409, { BucketName: name });
    }
    this.buckets.set(name, { name, region, createdAt: new Date(), tags, objects: new Map() });
    call.record({ id: name, created: true, ...(tags.length ? { tags } : {}) });
    return { status: 200, headers: { Location: `/${name}` } };
  }

  private listObjects(bucket: Bucket, query: URLSearchParams): RestResponse {
    const prefix = query.get('prefix') ?? '';
    const delimiter = query.get('delimiter') ?? '';
    const maxKeys = Math.min(Number(query.get('max-keys') ?? 1000), 1000);
    const after = query.get('continuation-token')
      ? Buffer.from(query.get('continuation-token')!, 'base64').toString('utf8')
      : query.get('start-after') ?? '';
    const encode = query.get('encoding-type') === 'url' ? (s: string) => encodeURIComponent(s).replace(/%2F/g, '/') : (s: string) => s;
    const keys = [...bucket.objects.keys()].filter((k) => k.startsWith(prefix) && k > after).sort();
    const contents: string[] = [];
    const prefixes = new Set<string>();
    let last = '';
    let truncated = false;
    for (const key of keys) {
      if (contents.length + prefixes.size >= maxKeys) {
        truncated = true;
        break;
      }
      const cut = delimiter ? key.indexOf(delimiter, prefix.length) : -1;
      if (cut >= 0) prefixes.add(key.slice(0, cut + delimiter.length));
      else contents.push(key);
      last = key;
    }
    return xml('ListBucketResult', {
      Name: bucket.name,
      Prefix: encode(prefix),
      Delimiter: delimiter ? encode(delimiter) : undefined,
      MaxKeys: maxKeys,
      EncodingType: query.get('encoding-type') ?? undefined,
      KeyCount: contents.length + prefixes.size,
      IsTruncated: truncated,
      ContinuationToken: query.get('continuation-token') ?? undefined,
      NextContinuationToken: truncated ? Buffer.from(last).toString('base64') : undefined,
      StartAfter: query.get('start-after') ? encode(query.get('start-after')!) : undefined,
      Contents: contents.map((key) => {
        const object = bucket.objects.get(key)!;
        return { Key: encode(key), LastModified: object.lastModified.toISOString(), ETag: object.etag, Size: object.body.length, StorageClass: 'STANDARD' };
      }),
      CommonPrefixes: [...prefixes].map((p) => ({ Prefix: encode(p) })),
    });
  }

  private putObjectRequest(bucketName: string, key: string, request: RestRequest, call: Call): RestResponse {
    this.bucket(bucketName);
    const body = isAwsChunked(request.headers) ? decodeAwsChunked(request.body) : request.body;
    const metadata: Record<string, string> = {};
    for (const [name, value] of Object.entries(request.headers)) {
      if (name.startsWith('x-amz-meta-') && typeof value === 'string') metadata[name.slice('x-amz-meta-'.length)] = value;
    }
    const object = storedObject(body, String(request.headers['content-type'] ?? 'binary/octet-stream'), metadata);
    this.buckets.get(bucketName)!.objects.set(key, object);
    call.record({ id: `${bucketName}/${key}` });
    return { status: 200, headers: { ETag: object.etag } };
  }

  private getObject(bucket: Bucket, key: string, request: RestRequest, headOnly: boolean): RestResponse {
    const object = bucket.objects.get(key);
    if (!object) throw new AwsError('NoSuchKey', 'The specified key does not exist.', 404, { Key: key });
    const headers: Record<string, string> = {
      'Content-Type': object.contentType,
      ETag: object.etag,
      'Last-Modified': object.lastModified.toUTCString(),
      'Accept-Ranges': 'bytes',
    };
    for (const [name, value] of Object.entries(object.metadata)) headers[`x-amz-meta-${name}`] = value;
    const range = /^bytes=(\d*)-(\d*)$/.exec(String(request.headers.range ?? ''));
    if (range && !headOnly) {
      const size = object.body.length;
      const start = range[1] === '' ? Math.max(0, size - Number(range[2])) : Number(range[1]);
      const end = range[1] === '' || range[2] === '' ? size - 1 : Math.min(Number(range[2]), size - 1);
      headers['Content-Range'] = `bytes ${start}-${end}/${size}`;
      return { status: 206, headers, body: object.body.subarray(start, end + 1) };
    }
    headers['Content-Length'] = String(object.body.length);
    return { status: 200, headers, body: headOnly ? undefined : object.body };
  }

  private deleteObjects(bucket: Bucket, body: Buffer): RestResponse {
    const request = parseXml(body).Delete as { Object?: { Key: string }[]; Quiet?: string } | undefined;
    const keys = (request?.Object ?? []).map((o) => String(o.Key));
    for (const key of keys) bucket.objects.delete(key);
    return xml('DeleteResult', { Deleted: request?.Quiet === 'true' ? [] : keys.map((Key) => ({ Key })) });
  }
}

function storedObject(body: Buffer, contentType: string, metadata: Record<string, string>): StoredObject {
  return { body, etag: `"${createHash('md5').update(body).digest('hex')}"`, lastModified: new Date(), contentType, metadata };
}

function xml(root: string, content: Record<string, unknown>): RestResponse {
  return { status: 200, headers: { 'Content-Type': 'application/xml' }, body: xmlDocument(root, content) };
}

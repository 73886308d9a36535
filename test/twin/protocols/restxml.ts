// S3's REST-XML: the operation is the method plus the path (`/bucket`, `/bucket/key`, path style
// as SDKs use it with an IP endpoint) plus sub-resources in the query (`?tagging`, `?list-type=2`).
import { XMLBuilder, XMLParser } from 'fast-xml-parser';
import type { AwsError } from '../errors.js';

export const S3_NAMESPACE = 'http://s3.amazonaws.com/doc/2006-03-01/';

export interface RestRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

export interface RestResponse {
  status: number;
  headers?: Record<string, string>;
  body?: string | Buffer;
}

const builder = new XMLBuilder({ ignoreAttributes: false, attributeNamePrefix: '@_', suppressEmptyNode: false });
const parser = new XMLParser({ ignoreAttributes: true, parseTagValue: false, isArray: (name) => ['Tag', 'Object'].includes(name) });

export function xmlDocument(root: string, content: Record<string, unknown>): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n${builder.build({ [root]: { '@_xmlns': S3_NAMESPACE, ...content } })}`;
}

export function parseXml(body: Buffer): Record<string, unknown> {
  const text = body.toString('utf8').trim();
  return text ? (parser.parse(text) as Record<string, unknown>) : {};
}

export function s3ErrorBody(error: AwsError, requestId: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n${builder.build({
    Error: { Code: error.code, Message: error.message, ...error.extra, RequestId: requestId, HostId: Buffer.from(requestId).toString('base64') },
  })}`;
}

/**
 * Undoes `Content-Encoding: aws-chunked` (SigV4 streaming uploads and trailing checksums):
 * `<hex size>[;chunk-signature=...]\r\n<bytes>\r\n` ... `0...\r\n[trailers]\r\n`.
 */
export function decodeAwsChunked(body: Buffer): Buffer {
  const parts: Buffer[] = [];
  let offset = 0;
  while (offset < body.length) {
    const lineEnd = body.indexOf('\r\n', offset);
    if (lineEnd < 0) break;
    const size = parseInt(body.subarray(offset, lineEnd).toString('latin1').split(';')[0], 16);
    if (!Number.isFinite(size) || size === 0) break;
    const start = lineEnd + 2;
    parts.push(body.subarray(start, start + size));
    offset = start + size + 2;
  }
  return Buffer.concat(parts);
}

export function isAwsChunked(headers: RestRequest['headers']): boolean {
  const encoding = String(headers['content-encoding'] ?? '');
  const sha = String(headers['x-amz-content-sha256'] ?? '');
  return encoding.split(',').map((s) => s.trim()).includes('aws-chunked') || sha.startsWith('STREAMING-');
}

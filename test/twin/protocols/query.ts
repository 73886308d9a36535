// The query protocols: a form-encoded request (`Action=...&Version=...` plus flattened members) and
// an XML answer. EC2 and IAM/STS differ in member names and list layout:
//   EC2:   Filter.1.Name / Filter.1.Value.1, answer <OpResponse><requestId/>members...</OpResponse>,
//          lists as <name><item>..</item></name>
//   query: Tags.member.1.Key, answer <OpResponse><OpResult>..</OpResult><ResponseMetadata>..,
//          lists as <name><member>..</member></name>
// Both are driven by the service model so names come from AWS, not from memory.
import { XMLBuilder } from 'fast-xml-parser';
import { AwsError } from '../errors.js';
import { operationOf, shapeOf, type ServiceModel, type Shape, type ShapeRef } from './model.js';

export type QueryFlavor = 'ec2' | 'query';

type Json = Record<string, unknown>;

const EC2_NAMESPACE = 'http://ec2.amazonaws.com/doc/2016-11-15/';

// ---- request -------------------------------------------------------------------------------

/** Reads a form body into the operation's input structure, with the model's member names. */
export function parseQueryInput(model: ServiceModel, operation: string, form: URLSearchParams, flavor: QueryFlavor): Json {
  const op = operationOf(model, operation);
  if (!op) throw new AwsError('InvalidAction', `The action ${operation} is not valid for this web service.`);
  if (!op.input) return {};
  const reader = new FormReader(model, form, flavor);
  return reader.structure(shapeOf(model, op.input), '') ?? {};
}

class FormReader {
  private readonly keys: string[];
  constructor(private readonly model: ServiceModel, private readonly form: URLSearchParams, private readonly flavor: QueryFlavor) {
    this.keys = [...form.keys()];
  }

  private present(key: string): boolean {
    return this.form.has(key) || this.keys.some((k) => k.startsWith(`${key}.`));
  }

  private wireName(ref: ShapeRef, memberName: string): string {
    if (this.flavor === 'ec2') {
      if (ref.queryName) return ref.queryName;
      if (ref.locationName) return ref.locationName[0].toUpperCase() + ref.locationName.slice(1);
      return memberName;
    }
    return ref.locationName ?? memberName;
  }

  structure(shape: Shape, prefix: string): Json | undefined {
    const out: Json = {};
    let found = false;
    for (const [memberName, ref] of Object.entries(shape.members ?? {})) {
      const key = prefix ? `${prefix}.${this.wireName(ref, memberName)}` : this.wireName(ref, memberName);
      const value = this.value(ref, key);
      if (value !== undefined) {
        out[memberName] = value;
        found = true;
      }
    }
    return found || !prefix ? out : undefined;
  }

  private value(ref: ShapeRef, key: string): unknown {
    const shape = shapeOf(this.model, ref);
    switch (shape.type) {
      case 'structure':
        return this.present(key) ? this.structure(shape, key) ?? {} : undefined;
      case 'list':
        return this.list(shape, ref, key);
      case 'map':
        return this.map(shape, ref, key);
      default:
        return this.form.has(key) ? scalar(shape, this.form.get(key) as string) : undefined;
    }
  }

  private list(shape: Shape, ref: ShapeRef, key: string): unknown[] | undefined {
    if (!this.present(key)) return undefined;
    // An empty list is sent as the bare key with an empty value.
    if (this.form.get(key) === '') return [];
    const flattened = this.flavor === 'ec2' || shape.flattened || ref.flattened;
    const base = flattened ? key : `${key}.${shape.member!.locationName ?? 'member'}`;
    const items: unknown[] = [];
    for (let i = 1; this.present(`${base}.${i}`); i++) items.push(this.value(shape.member!, `${base}.${i}`));
    return items;
  }

  private map(shape: Shape, ref: ShapeRef, key: string): Json | undefined {
    if (!this.present(key)) return undefined;
    const base = shape.flattened || ref.flattened ? key : `${key}.entry`;
    const keyName = shape.key!.locationName ?? 'key';
    const valueName = shape.value!.locationName ?? 'value';
    const out: Json = {};
    for (let i = 1; this.present(`${base}.${i}`); i++) {
      const k = this.form.get(`${base}.${i}.${keyName}`);
      if (k !== null) out[k] = this.value(shape.value!, `${base}.${i}.${valueName}`);
    }
    return out;
  }
}

function scalar(shape: Shape, raw: string): unknown {
  switch (shape.type) {
    case 'integer':
    case 'long':
    case 'double':
    case 'float': {
      const n = Number(raw);
      if (!Number.isFinite(n)) throw new AwsError('InvalidParameterValue', `Invalid value '${raw}': not a number.`);
      return n;
    }
    case 'boolean':
      return raw.toLowerCase() === 'true';
    case 'timestamp':
      return new Date(/^\d+(\.\d+)?$/.test(raw) ? Number(raw) * 1000 : raw);
    default:
      return raw;
  }
}

// ---- response ------------------------------------------------------------------------------

const builder = new XMLBuilder({ ignoreAttributes: false, attributeNamePrefix: '@_', suppressEmptyNode: false });
const XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n';

/** Renders an operation's output (an object with the model's member names) as the service answers it. */
export function serializeQueryOutput(model: ServiceModel, operation: string, output: Json, flavor: QueryFlavor, requestId: string): string {
  const op = operationOf(model, operation)!;
  const writer = new XmlWriter(model);
  const members = op.output ? writer.structure(shapeOf(model, op.output), output, op.output.shape) : {};
  if (flavor === 'ec2') {
    // Operations without an output shape still answer `<return>true</return>`.
    const body = op.output ? members : { return: 'true' };
    return XML_DECLARATION + builder.build({ [`${operation}Response`]: { '@_xmlns': EC2_NAMESPACE, requestId, ...body } });
  }
  const namespace = `${model.metadata.xmlNamespace ?? ''}`;
  const response: Json = { '@_xmlns': namespace };
  if (op.output?.resultWrapper) response[op.output.resultWrapper] = members;
  response.ResponseMetadata = { RequestId: requestId };
  return XML_DECLARATION + builder.build({ [`${operation}Response`]: response });
}

class XmlWriter {
  constructor(private readonly model: ServiceModel) {}

  structure(shape: Shape, data: Json, shapeName: string): Json {
    const out: Json = {};
    for (const key of Object.keys(data)) {
      if (data[key] !== undefined && !shape.members?.[key]) throw new Error(`twin: ${shapeName} has no member ${key}`);
    }
    for (const [memberName, ref] of Object.entries(shape.members ?? {})) {
      const value = data[memberName];
      if (value === undefined || value === null) continue;
      const memberShape = shapeOf(this.model, ref);
      const name = ref.locationName ?? memberName;
      if (memberShape.type === 'list' && (memberShape.flattened || ref.flattened)) {
        out[memberShape.member!.locationName ?? name] = (value as unknown[]).map((item) => this.value(memberShape.member!, item));
      } else {
        out[name] = this.value(ref, value);
      }
    }
    return out;
  }

  private value(ref: ShapeRef, value: unknown): unknown {
    const shape = shapeOf(this.model, ref);
    switch (shape.type) {
      case 'structure':
        return this.structure(shape, value as Json, ref.shape);
      case 'list': {
        const items = value as unknown[];
        if (items.length === 0) return '';
        return { [shape.member!.locationName ?? 'member']: items.map((item) => this.value(shape.member!, item)) };
      }
      case 'map':
        return {
          entry: Object.entries(value as Json).map(([k, v]) => ({
            [shape.key!.locationName ?? 'key']: k,
            [shape.value!.locationName ?? 'value']: this.value(shape.value!, v),
          })),
        };
      case 'timestamp':
        return (value instanceof Date ? value : new Date(value as string)).toISOString();
      case 'boolean':
        return value ? 'true' : 'false';
      case 'blob':
        return Buffer.isBuffer(value) ? value.toString('base64') : String(value);
      default:
        return String(value);
    }
  }
}

/** EC2's error document. */
export function ec2ErrorBody(error: AwsError, requestId: string): string {
  return XML_DECLARATION + builder.build({
    Response: { Errors: { Error: { Code: error.code, Message: error.message } }, RequestID: requestId },
  });
}

/** IAM's and STS's error document. */
export function queryErrorBody(model: ServiceModel, error: AwsError, status: number, requestId: string): string {
  const type = status >= 500 ? 'Receiver' : 'Sender';
  return XML_DECLARATION + builder.build({
    ErrorResponse: {
      '@_xmlns': model.metadata.xmlNamespace ?? '',
      Error: { Type: type, Code: error.code, Message: error.message },
      RequestId: requestId,
    },
  });
}

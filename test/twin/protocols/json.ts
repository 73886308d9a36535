// AWS JSON 1.1 (SSM, ECR): `X-Amz-Target: <prefix>.<Operation>`, a JSON body in, a JSON body out.
// Member names are the model's as they are; timestamps travel as epoch seconds and blobs as base64,
// which the model-driven walk below takes care of in both directions.
import { AwsError } from '../errors.js';
import { operationOf, shapeOf, type ServiceModel, type ShapeRef } from './model.js';

type Json = Record<string, unknown>;

export const JSON_CONTENT_TYPE = 'application/x-amz-json-1.1';

export function operationFromTarget(model: ServiceModel, target: string | undefined): string {
  const [prefix, operation] = (target ?? '').split('.');
  if (!operation || prefix !== (model.metadata as { targetPrefix?: string }).targetPrefix || !operationOf(model, operation)) {
    throw new AwsError('UnknownOperationException', `Unknown operation ${target ?? '(no X-Amz-Target)'}`);
  }
  return operation;
}

export function parseJsonInput(model: ServiceModel, operation: string, body: string): Json {
  let parsed: unknown;
  try {
    parsed = body.trim() === '' ? {} : JSON.parse(body);
  } catch {
    throw new AwsError('SerializationException', 'Request body is not valid JSON.');
  }
  const input = operationOf(model, operation)!.input;
  return input ? (convert(model, input, parsed, 'in') as Json) : {};
}

export function serializeJsonOutput(model: ServiceModel, operation: string, output: Json): string {
  const ref = operationOf(model, operation)!.output;
  return JSON.stringify(ref ? convert(model, ref, output, 'out', ref.shape) : {});
}

/** `{"__type": "...", "message": "..."}`, which both the SDK and botocore read. */
export function jsonErrorBody(error: AwsError): string {
  return JSON.stringify({ __type: error.code, message: error.message });
}

function convert(model: ServiceModel, ref: ShapeRef, value: unknown, direction: 'in' | 'out', path = ''): unknown {
  if (value === undefined || value === null) return undefined;
  const shape = shapeOf(model, ref);
  switch (shape.type) {
    case 'structure': {
      const out: Json = {};
      for (const [key, member] of Object.entries(value as Json)) {
        const memberRef = shape.members?.[key];
        if (!memberRef) {
          // Unknown input members are ignored (newer clients send newer fields); unknown output
          // members are a mistake in the twin.
          if (direction === 'out') throw new Error(`twin: ${path} has no member ${key}`);
          continue;
        }
        const converted = convert(model, memberRef, member, direction, `${path}.${key}`);
        if (converted !== undefined) out[key] = converted;
      }
      return out;
    }
    case 'list':
      return (value as unknown[]).map((item) => convert(model, shape.member!, item, direction, path));
    case 'map':
      return Object.fromEntries(Object.entries(value as Json).map(([k, v]) => [k, convert(model, shape.value!, v, direction, path)]));
    case 'timestamp':
      if (direction === 'in') return new Date(typeof value === 'number' ? value * 1000 : String(value));
      return (value instanceof Date ? value : new Date(value as string)).getTime() / 1000;
    case 'blob':
      if (direction === 'in') return Buffer.from(String(value), 'base64');
      return Buffer.isBuffer(value) ? value.toString('base64') : value;
    default:
      return value;
  }
}

// AWS's own service models (the JSON that botocore ships, installed with Debian's AWS CLI) tell the
// twin the wire name of every member. Reading requests and writing responses through them, instead
// of spelling `imagesSet` / `instancesSet` by hand, keeps the XML the twin speaks the XML AWS speaks.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';

export interface ShapeRef {
  shape: string;
  locationName?: string;
  queryName?: string;
  flattened?: boolean;
}

export interface Shape {
  type: 'structure' | 'list' | 'map' | 'string' | 'integer' | 'long' | 'boolean' | 'timestamp' | 'blob' | 'double' | 'float';
  members?: Record<string, ShapeRef>;
  member?: ShapeRef;
  key?: ShapeRef;
  value?: ShapeRef;
  flattened?: boolean;
  documentation?: string;
}

export interface Operation {
  name: string;
  input?: ShapeRef;
  output?: ShapeRef & { resultWrapper?: string };
}

export interface ServiceModel {
  metadata: { apiVersion: string; protocol: string; xmlNamespace?: string; endpointPrefix: string };
  operations: Record<string, Operation>;
  shapes: Record<string, Shape>;
}

const MODEL_DIRS = [
  process.env.AMI2DOCKER_TWIN_MODELS,
  '/usr/lib/python3/dist-packages/awscli/botocore/data',
  '/usr/share/awscli/botocore/data',
].filter((dir): dir is string => Boolean(dir));

const cache = new Map<string, ServiceModel>();

/** The newest API version of `service` (a botocore data directory name: ec2, iam, sts, ...). */
export function loadModel(service: string): ServiceModel {
  const cached = cache.get(service);
  if (cached) return cached;
  for (const root of MODEL_DIRS) {
    const dir = join(root, service);
    if (!existsSync(dir)) continue;
    const version = readdirSync(dir).sort().at(-1);
    if (!version) continue;
    const model = readModelFile(join(dir, version));
    if (model) {
      cache.set(service, model);
      return model;
    }
  }
  throw new Error(`no AWS service model for ${service} under ${MODEL_DIRS.join(', ')} (install Debian's awscli)`);
}

function readModelFile(versionDir: string): ServiceModel | undefined {
  const plain = join(versionDir, 'service-2.json');
  if (existsSync(plain)) return JSON.parse(readFileSync(plain, 'utf8')) as ServiceModel;
  const gz = `${plain}.gz`;
  if (existsSync(gz)) return JSON.parse(gunzipSync(readFileSync(gz)).toString('utf8')) as ServiceModel;
  return undefined;
}

export function shapeOf(model: ServiceModel, ref: ShapeRef): Shape {
  const shape = model.shapes[ref.shape];
  if (!shape) throw new Error(`model has no shape ${ref.shape}`);
  return shape;
}

export function operationOf(model: ServiceModel, name: string): Operation | undefined {
  return Object.hasOwn(model.operations, name) ? model.operations[name] : undefined;
}

// One HTTP endpoint for every service, told apart the way AWS's own front ends are not: by the
// service in the SigV4 credential scope (`Credential=AKID/DATE/REGION/<service>/aws4_request`).
// Every call goes through one pipeline: injected faults, policy, DryRun, the handler, history.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { appendFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ALWAYS_ALLOWED, denial, requiredPermissions } from './authorization.js';
import type { Call, Caller, Input, Outcome, QueryService, ServiceName } from './context.js';
import { handleControl } from './control.js';
import { AwsError, genericError, statusOf, type Protocol } from './errors.js';
import { requestId as newRequestId } from './ids.js';
import { evaluate } from './policy.js';
import { JSON_CONTENT_TYPE, jsonErrorBody, operationFromTarget, parseJsonInput, serializeJsonOutput } from './protocols/json.js';
import { loadModel, type ServiceModel } from './protocols/model.js';
import { ec2ErrorBody, parseQueryInput, queryErrorBody, serializeQueryOutput } from './protocols/query.js';
import type { S3Route } from './services/s3.js';
import { s3ErrorBody, type RestRequest, type RestResponse } from './protocols/restxml.js';
import type { Twin } from './twin.js';

const PROTOCOLS: Record<ServiceName, Protocol> = { ec2: 'ec2', iam: 'query', sts: 'query', ssm: 'json', ecr: 'json', s3: 'restxml' };
const MODEL_NAMES: Record<ServiceName, string> = { ec2: 'ec2', iam: 'iam', sts: 'sts', ssm: 'ssm', ecr: 'ecr', s3: 's3' };
const THROTTLE_MESSAGES: Record<Protocol, string> = {
  ec2: 'Request limit exceeded.',
  query: 'Rate exceeded',
  json: 'Rate exceeded',
  restxml: 'Please reduce your request rate.',
};
const READ_ONLY = /^(Describe|Get|List|Head)/;

interface Signed {
  service: ServiceName;
  caller: Caller;
}

export function requestHandler(twin: Twin): (req: IncomingMessage, res: ServerResponse) => void {
  const log = join(twin.config.stateDir, 'requests.log');
  return (req, res) => {
    void readBody(req).then(async (body) => {
      const url = new URL(req.url ?? '/', 'http://twin');
      if (url.pathname.startsWith('/__twin/')) {
        await handleControl(twin, req.method ?? 'GET', url, body, res);
        return;
      }
      const signed = signedBy(twin, req.headers.authorization);
      if (!signed) {
        send(res, 403, { 'Content-Type': 'text/plain' }, 'Missing or unreadable SigV4 Authorization header.');
        return;
      }
      const outcome = await dispatch(twin, signed, req, url, body);
      void appendFile(log, `${new Date().toISOString()} ${signed.service} ${outcome.operation} ${signed.caller.arn} ${outcome.status}${outcome.error ? ` ${outcome.error}` : ''}\n`).catch(() => undefined);
      send(res, outcome.status, outcome.headers, outcome.body);
    }).catch((error: unknown) => {
      console.error('twin: request failed:', error);
      if (!res.headersSent) send(res, 500, { 'Content-Type': 'text/plain' }, 'twin internal error');
    });
  };
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function send(res: ServerResponse, status: number, headers: Record<string, string> = {}, body?: string | Buffer): void {
  res.writeHead(status, headers);
  res.end(body);
}

function signedBy(twin: Twin, authorization: string | undefined): Signed | undefined {
  const match = /Credential=([^/,\s]+)\/[^/]+\/[^/]+\/([^/]+)\/aws4_request/.exec(authorization ?? '');
  if (!match) return undefined;
  const service = match[2] === 'api.ecr' ? 'ecr' : match[2];
  if (!(service in PROTOCOLS)) return undefined;
  return { service: service as ServiceName, caller: twin.caller(match[1]) };
}

interface Answer {
  operation: string;
  status: number;
  headers: Record<string, string>;
  body?: string | Buffer;
  error?: string;
}

async function dispatch(twin: Twin, signed: Signed, req: IncomingMessage, url: URL, body: Buffer): Promise<Answer> {
  const protocol = PROTOCOLS[signed.service];
  const model = protocol === 'restxml' ? undefined : loadModel(MODEL_NAMES[signed.service]);
  const requestId = newRequestId();
  let operation = 'Unknown';
  try {
    if (protocol === 'restxml') {
      const request: RestRequest = { method: req.method ?? 'GET', path: url.pathname, query: url.searchParams, headers: req.headers, body };
      const route = twin.s3.route(request);
      operation = route.operation;
      const response = await invoke(twin, signed, operation, {}, requestId, route, (call) => twin.s3.handle(route, request, call)) as RestResponse;
      return { operation, status: response.status, headers: { 'x-amz-request-id': requestId, ...response.headers }, body: response.body };
    }
    if (protocol === 'json') {
      operation = operationFromTarget(model!, header(req, 'x-amz-target'));
      const input = parseJsonInput(model!, operation, body.toString('utf8'));
      const output = await invoke(twin, signed, operation, input, requestId);
      return { operation, status: 200, headers: { 'Content-Type': JSON_CONTENT_TYPE, 'x-amzn-RequestId': requestId }, body: serializeJsonOutput(model!, operation, output as Input) };
    }
    const form = new URLSearchParams(body.toString('utf8'));
    for (const [k, v] of url.searchParams) if (!form.has(k)) form.set(k, v);
    operation = form.get('Action') ?? 'Unknown';
    const input = parseQueryInput(model!, operation, form, protocol === 'ec2' ? 'ec2' : 'query');
    const output = await invoke(twin, signed, operation, input, requestId);
    return { operation, status: 200, headers: { 'Content-Type': 'text/xml;charset=UTF-8', 'x-amzn-RequestId': requestId }, body: serializeQueryOutput(model!, operation, output as Input, protocol === 'ec2' ? 'ec2' : 'query', requestId) };
  } catch (caught) {
    const error = caught instanceof AwsError ? caught : internalError(caught);
    return { operation, error: error.code, ...errorAnswer(protocol, model, error, requestId) };
  }
}

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function internalError(caught: unknown): AwsError {
  console.error('twin: handler failed:', caught);
  return new AwsError('InternalError', `twin: ${caught instanceof Error ? caught.message : String(caught)}`, 500);
}

function errorAnswer(protocol: Protocol, model: ServiceModel | undefined, error: AwsError, requestId: string): Omit<Answer, 'operation'> {
  const status = statusOf(protocol, error);
  switch (protocol) {
    case 'ec2':
      return { status, headers: { 'Content-Type': 'text/xml;charset=UTF-8' }, body: ec2ErrorBody(error, requestId) };
    case 'query':
      return { status, headers: { 'Content-Type': 'text/xml', 'x-amzn-RequestId': requestId }, body: queryErrorBody(model!, error, status, requestId) };
    case 'json':
      return {
        status,
        headers: { 'Content-Type': JSON_CONTENT_TYPE, 'x-amzn-RequestId': requestId, 'x-amzn-ErrorType': `${error.code}:` },
        body: jsonErrorBody(error),
      };
    case 'restxml':
      return { status, headers: { 'Content-Type': 'application/xml', 'x-amz-request-id': requestId }, body: s3ErrorBody(error, requestId) };
  }
}

/** The pipeline every call goes through, whatever its protocol. */
async function invoke(
  twin: Twin,
  signed: Signed,
  operation: string,
  input: Input,
  requestId: string,
  route?: Omit<S3Route, 'operation'>,
  handler?: (call: Call) => unknown,
): Promise<unknown> {
  const { service, caller } = signed;
  const protocol = PROTOCOLS[service];
  const outcomes: Outcome[] = [];
  const call: Call = { service, operation, caller, requestId, record: (outcome) => outcomes.push(outcome) };
  const mutating = !READ_ONLY.test(operation);
  try {
    if (twin.faults.shouldThrottle(operation)) throw genericError(protocol, 'throttle', THROTTLE_MESSAGES[protocol]);
    const injected = twin.faults.takeError(operation);
    if (injected) throw injected;
    authorize(twin, signed, operation, input, route);
    if (service === 'ec2' && input.DryRun) throw new AwsError('DryRunOperation', 'Request would have succeeded, but DryRun flag is set.');
    const run = handler ?? ((c: Call) => {
      const operations = queryService(twin, service).operations;
      if (!Object.hasOwn(operations, operation)) throw new AwsError(protocol === 'json' ? 'UnknownOperationException' : 'InvalidAction', `The twin does not implement ${service}:${operation}.`);
      return operations[operation](input, c);
    });
    const output = await run(call);
    if (mutating) twin.record(service, operation, caller, outcomes);
    return output;
  } catch (error) {
    if (mutating) twin.record(service, operation, caller, outcomes, error instanceof AwsError ? error.code : 'InternalError');
    throw error;
  }
}

/** The services whose operations take a parsed input (all but S3, which routes itself). */
function queryService(twin: Twin, service: ServiceName): QueryService {
  if (service === 's3') throw new Error('S3 requests carry their own handler');
  return { ec2: twin.ec2, iam: twin.iam, sts: twin.sts, ssm: twin.ssm, ecr: twin.ecr }[service];
}

/**
 * The twin's user is held to the policy set with --policy or the control API (none: allowed);
 * an instance is held to its role's policies.
 */
function authorize(twin: Twin, signed: Signed, operation: string, input: Input, route?: Omit<S3Route, 'operation'>): void {
  const { service, caller } = signed;
  const documents = caller.roleName ? twin.iam.roleDocuments(caller.roleName) : twin.policy ? [twin.policy] : undefined;
  if (!documents) return;
  for (const permission of requiredPermissions(twin.config, twin.iam, service, operation, input, route)) {
    if (ALWAYS_ALLOWED.has(permission.action)) continue;
    const decision = evaluate(documents, permission.action);
    if (decision !== 'allow') throw denial(PROTOCOLS[service], caller, permission, decision);
  }
}

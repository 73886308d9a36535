// The AWS twin: a loopback service speaking EC2, IAM, STS, SSM, ECR and S3 for the operations
// ami2docker uses, with a real data plane. Reached through the SDK's AWS_ENDPOINT_URL.
//
//   node dist/test/twin/server.js --state-dir DIR [--port 0] [--amis FILE] [--time-scale 0.05]
//     [--latency-jitter 0.2] [--registry 127.0.0.1:5000] [--policy FILE] [--account 123456789012]
//     [--region us-east-1]
//
// Prints `AMI2DOCKER_TWIN_READY http://127.0.0.1:PORT` once listening. On SIGTERM or SIGINT it
// terminates every instance, detaches every loop device, deletes its volume files and exits.
import { mkdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { TwinConfig } from './context.js';
import { requestHandler } from './http.js';
import { parsePolicy } from './policy.js';
import type { AmiSpec } from './services/ec2-resources.js';
import { Twin } from './twin.js';

export const READY_PREFIX = 'AMI2DOCKER_TWIN_READY';

function options() {
  const { values } = parseArgs({
    options: {
      'state-dir': { type: 'string' },
      port: { type: 'string', default: '0' },
      amis: { type: 'string' },
      'time-scale': { type: 'string', default: '1' },
      'latency-jitter': { type: 'string', default: '0' },
      registry: { type: 'string', default: process.env.AMI2DOCKER_TEST_REGISTRY ?? '127.0.0.1:5000' },
      policy: { type: 'string' },
      account: { type: 'string', default: '123456789012' },
      region: { type: 'string', default: 'us-east-1' },
    },
  });
  if (!values['state-dir']) throw new Error('--state-dir is required');
  const timeScale = Number(values['time-scale']);
  if (!(timeScale > 0)) throw new Error('--time-scale must be a positive number');
  const latencyJitter = Number(values['latency-jitter']);
  if (!(latencyJitter >= 0 && latencyJitter < 1)) throw new Error('--latency-jitter must be at least 0 and less than 1');
  return {
    stateDir: resolve(values['state-dir']),
    port: Number(values.port),
    amis: values.amis ? (JSON.parse(readFileSync(values.amis, 'utf8')) as AmiSpec[]) : [],
    policy: values.policy ? parsePolicy(readFileSync(values.policy, 'utf8')) : undefined,
    timeScale,
    latencyJitter,
    registry: values.registry!,
    account: values.account!,
    region: values.region!,
  };
}

async function main(): Promise<void> {
  const opts = options();
  mkdirSync(opts.stateDir, { recursive: true });
  const config: TwinConfig = { stateDir: opts.stateDir, account: opts.account, region: opts.region, timeScale: opts.timeScale, latencyJitter: opts.latencyJitter, registry: opts.registry, url: '' };
  const twin = new Twin(config, opts.amis, opts.policy);
  const server = createServer(requestHandler(twin));
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((ready) => server.listen(opts.port, '127.0.0.1', ready));
  config.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  let closing = false;
  const stop = async (signal: string) => {
    if (closing) return;
    closing = true;
    server.close();
    server.closeAllConnections();
    try {
      await twin.close();
    } catch (error) {
      console.error(`twin: cleanup after ${signal} failed:`, error);
      process.exitCode = 1;
    }
    process.exit();
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
  process.stdout.write(`${READY_PREFIX} ${config.url}\n`);
}

main().catch((error: unknown) => {
  console.error(`twin: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(2);
});

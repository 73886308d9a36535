// The ECR side: the target repository, checking the pushed image, and pulling it locally.
// Repository URIs and registry hosts always come from ECR's answers, never built here.
import { spawn } from 'node:child_process';
import {
  CreateRepositoryCommand,
  DescribeImagesCommand,
  DescribeRepositoriesCommand,
  GetAuthorizationTokenCommand,
  ListTagsForResourceCommand,
  type Repository,
} from '@aws-sdk/client-ecr';
import type {
  EnsureRepositoryInput,
  EnsureRepositoryOutput,
  PullImageInput,
  PullImageOutput,
  Resolved,
  VerifyImageInput,
  VerifyImageOutput,
} from '../machine/types.js';
import type { EffectContext } from './context.js';
import { InputError, VerificationError, hasAwsCode, unlessCode } from './errors.js';
import { carriesRunId, reusableTagList } from './tags.js';
import { sendOptions, throwIfAborted } from './wait.js';

/**
 * `--ecr-repository` takes a name (`team/app`) or a URI (`host/team/app`). The first path component
 * is a registry host when it looks like one (has a dot or a port, or is localhost), as docker decides.
 */
export function repositoryNameFromReference(reference: string): string {
  const withoutDigest = reference.split('@')[0];
  const tagColon = withoutDigest.indexOf(':', withoutDigest.lastIndexOf('/') + 1);
  const withoutTag = tagColon > 0 && withoutDigest.includes('/') ? withoutDigest.slice(0, tagColon) : withoutDigest;
  const [first, ...rest] = withoutTag.split('/');
  const isHost = rest.length > 0 && (first.includes('.') || first.includes(':') || first === 'localhost');
  return isHost ? rest.join('/') : withoutTag;
}

async function describeRepository(name: string, ctx: EffectContext): Promise<Repository | undefined> {
  const answer = await unlessCode(() => ctx.clients.ecr.send(new DescribeRepositoriesCommand({ repositoryNames: [name] }), sendOptions(ctx)), 'RepositoryNotFoundException');
  return answer?.repositories?.[0];
}

/** For resolve: the named repository must exist; without a name one is derived from the AMI. */
export async function resolveRepository(reference: string | undefined, defaultName: string, ctx: EffectContext): Promise<Resolved['repository']> {
  if (!reference) return { name: defaultName, create: true };
  const name = repositoryNameFromReference(reference);
  const repository = await describeRepository(name, ctx);
  if (!repository?.repositoryUri) {
    throw new InputError(`ECR repository '${name}' does not exist in region ${ctx.clients.region}; create it or omit --ecr-repository to have one created`);
  }
  return { name: repository.repositoryName ?? name, uri: repository.repositoryUri, create: false };
}

async function carriesRunTag(repository: Repository, runId: string, ctx: EffectContext): Promise<boolean> {
  if (!repository.repositoryArn) return false;
  const answer = await ctx.clients.ecr.send(new ListTagsForResourceCommand({ resourceArn: repository.repositoryArn }), sendOptions(ctx));
  return carriesRunId(answer.tags, runId);
}

export async function ensureRepository(input: EnsureRepositoryInput, ctx: EffectContext): Promise<EnsureRepositoryOutput> {
  try {
    const answer = await ctx.clients.ecr.send(new CreateRepositoryCommand({
      repositoryName: input.name,
      tags: reusableTagList(input.tags),
    }), sendOptions(ctx));
    const repository = answer.repository;
    if (!repository?.repositoryUri) throw new Error(`CreateRepository returned no URI for ${input.name}`);
    return { name: repository.repositoryName ?? input.name, uri: repository.repositoryUri, created: true };
  } catch (error) {
    if (!hasAwsCode(error, 'RepositoryAlreadyExistsException')) throw error;
  }
  const existing = await describeRepository(input.name, ctx);
  if (!existing?.repositoryUri) throw new Error(`ECR repository ${input.name} exists but DescribeRepositories does not show it`);
  // An earlier attempt of this run created it when it carries this run's id.
  const created = await carriesRunTag(existing, input.tags.runId, ctx);
  return { name: existing.repositoryName ?? input.name, uri: existing.repositoryUri, created };
}

/** The digest the conversion reported must be in the repository with every requested tag. */
export async function verifyImage(input: VerifyImageInput, ctx: EffectContext): Promise<VerifyImageOutput> {
  const answer = await unlessCode(() => ctx.clients.ecr.send(new DescribeImagesCommand({
    repositoryName: input.repositoryName,
    imageIds: [{ imageDigest: input.digest }],
  }), sendOptions(ctx)), 'ImageNotFoundException');
  const image = answer?.imageDetails?.find((detail) => detail.imageDigest === input.digest);
  if (!image) {
    throw new VerificationError(`image ${input.digest} is not in ECR repository ${input.repositoryName} although the conversion reported pushing it`);
  }
  const missing = input.tags.filter((tag) => !(image.imageTags ?? []).includes(tag));
  if (missing.length) {
    throw new VerificationError(`image ${input.digest} in ${input.repositoryName} lacks the tags ${missing.join(', ')} (it has ${(image.imageTags ?? []).join(', ') || 'none'})`);
  }
  return {
    digest: input.digest,
    ...(image.imageSizeInBytes !== undefined ? { sizeBytes: image.imageSizeInBytes } : {}),
    ...(image.imagePushedAt ? { pushedAt: new Date(image.imagePushedAt).toISOString() } : {}),
  };
}

interface DockerRun { args: string[]; stdin?: string }

/** Runs docker, reporting its output line by line; `stdin` carries a secret, so it is never logged. */
function runDocker({ args, stdin }: DockerRun, ctx: EffectContext): Promise<void> {
  throwIfAborted(ctx.signal);
  return new Promise((resolve, reject) => {
    const child = spawn('docker', args, { stdio: ['pipe', 'pipe', 'pipe'], signal: ctx.signal, env: process.env });
    const report = (chunk: Buffer) => {
      for (const line of chunk.toString('utf8').split(/\r?\n/)) {
        if (line.trim()) ctx.report({ type: 'output', step: 'pull', message: line });
      }
    };
    let lastError = '';
    child.stdout.on('data', report);
    child.stderr.on('data', (chunk: Buffer) => { lastError = chunk.toString('utf8').trim() || lastError; report(chunk); });
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve();
      else reject(new Error(`docker ${args[0]} failed (exit ${code})${lastError ? `: ${lastError}` : ''}`));
    });
    child.stdin.end(stdin ?? '');
  });
}

/** Logs docker in to the registry ECR names (password on stdin only), then pulls the image. */
export async function pullImage(input: PullImageInput, ctx: EffectContext): Promise<PullImageOutput> {
  const answer = await ctx.clients.ecr.send(new GetAuthorizationTokenCommand({}), sendOptions(ctx));
  const data = answer.authorizationData?.[0];
  if (!data?.authorizationToken || !data.proxyEndpoint) throw new Error('ECR GetAuthorizationToken returned no token');
  const decoded = Buffer.from(data.authorizationToken, 'base64').toString('utf8');
  const separator = decoded.indexOf(':');
  const username = decoded.slice(0, separator);
  await runDocker({ args: ['login', '--username', username, '--password-stdin', data.proxyEndpoint], stdin: decoded.slice(separator + 1) }, ctx);
  // Pull exactly what was verified, by digest, then name it as the registry does.
  await runDocker({ args: ['pull', input.imageUri] }, ctx);
  const repository = input.imageUri.split('@')[0]!;
  for (const tag of input.tags) await runDocker({ args: ['tag', input.imageUri, `${repository}:${tag}`] }, ctx);
  return { pulled: input.imageUri };
}

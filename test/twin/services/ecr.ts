// ECR, fronted by a real Docker registry: repositories are kept here, images live in the
// registry (pushed with docker/skopeo to `<registry>/<name>`), and DescribeImages reads them back.
import { randomBytes } from 'node:crypto';
import type { Call, Input, QueryService, TwinConfig } from '../context.js';
import { AwsError } from '../errors.js';
import { copyTag, type Tag } from '../tags.js';

interface Repository {
  name: string;
  arn: string;
  createdAt: Date;
  tags: Tag[];
  imageTagMutability: string;
  scanOnPush: boolean;
}

interface RegistryImage {
  digest: string;
  tags: string[];
  sizeBytes: number;
  mediaType: string;
  artifactMediaType?: string;
}

const MANIFEST_TYPES = [
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.oci.image.index.v1+json',
];

// ECR's rule for repository names.
const REPOSITORY_NAME = /^(?=.{2,256}$)(?:[a-z0-9]+(?:[._-][a-z0-9]+)*\/)*[a-z0-9]+(?:[._-][a-z0-9]+)*$/;

export class EcrService implements QueryService {
  readonly repositories = new Map<string, Repository>();
  /** When the twin first saw each digest: the registry does not record push times. */
  private readonly firstSeen = new Map<string, Date>();

  constructor(private readonly config: TwinConfig) {}

  private get registryUrl(): string {
    return `http://${this.config.registry}`;
  }

  readonly operations = {
    CreateRepository: (input: Input, call: Call) => {
      const name: string = input.repositoryName ?? '';
      if (!REPOSITORY_NAME.test(name)) {
        throw new AwsError('InvalidParameterException', `Invalid parameter at 'repositoryName' failed to satisfy constraint: 'must satisfy regular expression '(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*''`);
      }
      if (this.repositories.has(name)) {
        throw new AwsError('RepositoryAlreadyExistsException', `The repository with name '${name}' already exists in the registry with id '${this.config.account}'`);
      }
      const repository: Repository = {
        name,
        arn: `arn:aws:ecr:${this.config.region}:${this.config.account}:repository/${name}`,
        createdAt: new Date(),
        tags: (input.tags ?? []).map(copyTag),
        imageTagMutability: input.imageTagMutability ?? 'MUTABLE',
        scanOnPush: Boolean(input.imageScanningConfiguration?.scanOnPush),
      };
      this.repositories.set(name, repository);
      call.record({ id: name, created: true, tags: repository.tags });
      return { repository: this.repositoryOutput(repository) };
    },

    DescribeRepositories: (input: Input) => {
      const names: string[] | undefined = input.repositoryNames;
      const repositories = names?.length ? names.map((n) => this.repository(n)) : [...this.repositories.values()];
      return { repositories: repositories.map((r) => this.repositoryOutput(r)) };
    },

    DeleteRepository: async (input: Input, call: Call) => {
      const repository = this.repository(input.repositoryName);
      const images = await this.registryImages(repository.name);
      if (images.length > 0 && !input.force) {
        throw new AwsError('RepositoryNotEmptyException', `The repository with name '${repository.name}' in registry with id '${this.config.account}' cannot be deleted because it still contains images`);
      }
      for (const image of images) await this.deleteManifest(repository.name, image.digest);
      this.repositories.delete(repository.name);
      call.record({ id: repository.name });
      return { repository: this.repositoryOutput(repository) };
    },

    ListTagsForResource: (input: Input) => {
      const repository = [...this.repositories.values()].find((r) => r.arn === input.resourceArn);
      if (!repository) {
        const name = String(input.resourceArn ?? '').split(':repository/')[1] ?? input.resourceArn;
        throw new AwsError('RepositoryNotFoundException', `The repository with name '${name}' does not exist in the registry with id '${this.config.account}'`);
      }
      return { tags: repository.tags };
    },

    GetAuthorizationToken: () => ({
      authorizationData: [{
        // The registry takes no credentials; the token still has ECR's shape (`AWS:<password>`).
        authorizationToken: Buffer.from(`AWS:${randomBytes(24).toString('base64url')}`).toString('base64'),
        expiresAt: new Date(Date.now() + 12 * 3600 * 1000),
        proxyEndpoint: this.registryUrl,
      }],
    }),

    DescribeImages: async (input: Input) => {
      const repository = this.repository(input.repositoryName);
      let images = await this.registryImages(repository.name);
      const ids = (input.imageIds ?? []) as { imageDigest?: string; imageTag?: string }[];
      if (ids.length > 0) {
        images = ids.map((id) => {
          const found = images.find((i) => (id.imageDigest ? i.digest === id.imageDigest : true) && (id.imageTag ? i.tags.includes(id.imageTag) : true));
          if (!found) {
            throw new AwsError('ImageNotFoundException', `The image with imageId {imageDigest:'${id.imageDigest ?? 'null'}', imageTag:'${id.imageTag ?? 'null'}'} does not exist within the repository with name '${repository.name}' in the registry with id '${this.config.account}'`);
          }
          return found;
        });
      }
      if (input.filter?.tagStatus === 'TAGGED') images = images.filter((i) => i.tags.length > 0);
      if (input.filter?.tagStatus === 'UNTAGGED') images = images.filter((i) => i.tags.length === 0);
      return {
        imageDetails: images.map((image) => ({
          registryId: this.config.account,
          repositoryName: repository.name,
          imageDigest: image.digest,
          imageTags: image.tags.length > 0 ? image.tags : undefined,
          imageSizeInBytes: image.sizeBytes,
          imagePushedAt: this.firstSeen.get(image.digest),
          imageManifestMediaType: image.mediaType,
          artifactMediaType: image.artifactMediaType,
        })),
      };
    },
  };

  private repository(name: string): Repository {
    const repository = this.repositories.get(name);
    if (!repository) {
      throw new AwsError('RepositoryNotFoundException', `The repository with name '${name}' does not exist in the registry with id '${this.config.account}'`);
    }
    return repository;
  }

  repositoryUri(name: string): string {
    return `${this.config.registry}/${name}`;
  }

  private repositoryOutput(repository: Repository): Record<string, unknown> {
    return {
      repositoryArn: repository.arn,
      registryId: this.config.account,
      repositoryName: repository.name,
      repositoryUri: this.repositoryUri(repository.name),
      createdAt: repository.createdAt,
      imageTagMutability: repository.imageTagMutability,
      imageScanningConfiguration: { scanOnPush: repository.scanOnPush },
      encryptionConfiguration: { encryptionType: 'AES256' },
    };
  }

  /** Every tagged image in the registry's repository, grouped by manifest digest. */
  private async registryImages(name: string): Promise<RegistryImage[]> {
    const list = await fetch(`${this.registryUrl}/v2/${name}/tags/list`);
    if (list.status === 404) return [];
    if (!list.ok) throw new AwsError('ServerException', `registry: ${list.status} listing ${name}`, 500);
    const tags = ((await list.json()) as { tags?: string[] | null }).tags ?? [];
    const byDigest = new Map<string, RegistryImage>();
    for (const tag of tags.sort()) {
      const image = await this.manifest(name, tag);
      if (!image) continue;
      const existing = byDigest.get(image.digest);
      if (existing) existing.tags.push(tag);
      else byDigest.set(image.digest, { ...image, tags: [tag] });
      if (!this.firstSeen.has(image.digest)) this.firstSeen.set(image.digest, new Date());
    }
    return [...byDigest.values()];
  }

  private async manifest(name: string, reference: string): Promise<Omit<RegistryImage, 'tags'> | undefined> {
    const response = await fetch(`${this.registryUrl}/v2/${name}/manifests/${reference}`, { headers: { Accept: MANIFEST_TYPES.join(', ') } });
    if (response.status === 404) return undefined;
    if (!response.ok) throw new AwsError('ServerException', `registry: ${response.status} reading ${name}:${reference}`, 500);
    const body = (await response.json()) as {
      mediaType?: string;
      config?: { size: number; mediaType?: string };
      layers?: { size: number }[];
      manifests?: { size: number }[];
    };
    const parts = body.layers ?? body.manifests ?? [];
    return {
      digest: response.headers.get('docker-content-digest') ?? '',
      mediaType: body.mediaType ?? response.headers.get('content-type') ?? MANIFEST_TYPES[0],
      artifactMediaType: body.config?.mediaType,
      sizeBytes: parts.reduce((sum, p) => sum + p.size, body.config?.size ?? 0),
    };
  }

  private async deleteManifest(name: string, digest: string): Promise<void> {
    const response = await fetch(`${this.registryUrl}/v2/${name}/manifests/${digest}`, { method: 'DELETE' });
    if (!response.ok && response.status !== 404) throw new AwsError('ServerException', `registry: ${response.status} deleting ${name}@${digest}`, 500);
  }
}

// The remote conversion script against real disk images, a real registry and a real Docker engine:
// every AMI disk layout, byte-for-byte fidelity of the image's tree, Dockerfile changes, excludes,
// compression, registry auth, failures and cleanup. Needs root and `scripts/services.sh start`.
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { attachDisk, makeDisk, mountRootReadOnly, ROOT_LAYOUTS, ROOT_PARTITION, type AttachedDisk, type Layout } from '../fixtures/disk.js';
import { extractImage, fetchImage, OCI_MANIFEST, DOCKER_MANIFEST } from '../fixtures/image.js';
import { compareTrees, snapshotTree, type Manifest } from '../fixtures/manifest.js';
import { DOCKER_HOST, REGISTRY, leftovers, makeShims, mountsOf, runConversion, toolboxWithout, type ConversionEnv, type RunResult } from './harness.js';

const run = promisify(execFile);
const docker = (...args: string[]) => run('docker', args, { env: { ...process.env, DOCKER_HOST }, maxBuffer: 1 << 26 });

const PASSWORD = `pw-${randomBytes(12).toString('hex')}`;
const SUITE = `${Date.now().toString(36)}${randomBytes(2).toString('hex')}`;
const AMI_CREATED = '2024-03-04T05:06:07.000Z';
const EXPECTED_STEPS = ['install', 'find-disk', 'find-root', 'mount', 'login', 'pack', 'push', 'done'];

let work: string;
let shims: Awaited<ReturnType<typeof makeShims>>;
const images = new Map<Layout, string>();
const pulled: string[] = [];

const newVolumeId = () => `vol-0${randomBytes(8).toString('hex')}`;
const repositoryFor = (name: string) => `${REGISTRY}/a2d-remote-${SUITE}/${name}`;

function conversionEnv(overrides: Partial<ConversionEnv> = {}): ConversionEnv {
  return {
    A2D_VOLUME_ID: newVolumeId(),
    A2D_DEVICE: '/dev/sdf',
    A2D_REPOSITORY_URI: repositoryFor('default'),
    A2D_TAGS: 'latest',
    A2D_PLATFORM: 'linux/amd64',
    A2D_REGION: 'eu-west-1',
    A2D_AMI_ID: 'ami-0123456789abcdef0',
    A2D_AMI_NAME: 'fixture image',
    A2D_AMI_CREATION_DATE: AMI_CREATED,
    A2D_CHANGES: '',
    A2D_EXCLUDES: '',
    A2D_COMPRESSION: 'gzip',
    ...overrides,
  };
}

/** Builds each layout's disk image once per run. */
async function diskImage(layout: Layout): Promise<string> {
  const existing = images.get(layout);
  if (existing) return existing;
  const file = path.join(work, `${layout}.img`);
  const built = await makeDisk(layout, file);
  if (!built.built) throw new Error(`cannot build ${layout}: ${built.skipped}`);
  images.set(layout, file);
  return file;
}

async function withDisk<T>(layout: Layout, use: (disk: AttachedDisk) => Promise<T>): Promise<T> {
  const disk = await attachDisk(await diskImage(layout));
  try {
    return await use(disk);
  } finally {
    await disk.detach();
  }
}

async function scratch(prefix: string): Promise<string> {
  return mkdtemp(path.join(work, `${prefix}-`));
}

/** Converts with the Nitro by-id name in a private namespace, as on a real helper. */
async function convert(disk: AttachedDisk, env: ConversionEnv, shimDir = shims.dir): Promise<RunResult & { tmpDir: string }> {
  const tmpDir = await scratch('tmp');
  const result = await runConversion({ env, attachAs: disk.device, pathPrefix: [shimDir], tmpDir, watchArgvFor: PASSWORD });
  return { ...result, tmpDir };
}

function expectSuccess(r: RunResult & { tmpDir: string }, env: ConversionEnv): void {
  expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
  expect(r.result).toBeDefined();
  const { imageUri, digest, tags } = r.result!;
  expect(digest).toMatch(/^sha256:[0-9a-f]{64}$/);
  expect(imageUri).toBe(`${env.A2D_REPOSITORY_URI}@${digest}`);
  expect(tags).toEqual(env.A2D_TAGS.split(' ').filter(Boolean));
  expect([...new Set(r.steps.map((s) => s.step))]).toEqual(EXPECTED_STEPS);
  expect(r.steps.filter((s) => s.step === 'install').map((s) => s.text)).toEqual(['checking tools', expect.stringMatching(/^ready in [0-9.]+ s \(compressor: (pigz|zstd)\)$/)]);
  expect(r.stdout + r.stderr).not.toContain(PASSWORD);
  expect(r.argvLeaks).toEqual([]);
}

const repositoryOf = (uri: string) => uri.slice(uri.indexOf('/') + 1);

/** Snapshots the disk's root filesystem and the pushed image's tree (unpacked from the registry). */
async function sourceAndImage(layout: (typeof ROOT_LAYOUTS)[number], env: ConversionEnv, digest: string): Promise<{ source: Manifest; image: Manifest }> {
  const unpacked = await scratch('image');
  const mounted = await mountRootReadOnly(await diskImage(layout), ROOT_PARTITION[layout]);
  try {
    await extractImage(REGISTRY, repositoryOf(env.A2D_REPOSITORY_URI), digest, unpacked);
    return { source: await snapshotTree(mounted.root), image: await snapshotTree(unpacked) };
  } finally {
    await mounted.release();
    await rm(unpacked, { recursive: true, force: true });
  }
}

async function pull(imageUri: string): Promise<void> {
  await docker('pull', '-q', imageUri);
  pulled.push(imageUri);
}

beforeAll(async () => {
  if (process.getuid?.() !== 0) throw new Error('the remote tests need root (loop devices, mounts)');
  const ping = await fetch(`http://${REGISTRY}/v2/`).catch(() => undefined);
  if (!ping?.ok) throw new Error(`no registry at ${REGISTRY}: run scripts/services.sh start`);
  work = await mkdtemp(path.join(tmpdir(), 'a2d-remote-'));
  shims = await makeShims(path.join(work, 'bin'), PASSWORD);
});

afterAll(async () => {
  for (const image of pulled) await docker('rmi', '-f', image).catch(() => undefined);
  if (work) await rm(work, { recursive: true, force: true });
});

describe('convert.sh on every AMI disk layout', () => {
  for (const layout of ROOT_LAYOUTS) {
    it(`${layout}: the image holds exactly the root filesystem, and runs`, async () => {
      const env = conversionEnv({ A2D_REPOSITORY_URI: repositoryFor(layout), A2D_TAGS: `latest ${layout}` });
      const r = await withDisk(layout, async (disk) => {
        const r = await convert(disk, env);
        expectSuccess(r, env);
        const rootDevice = `${disk.device}${ROOT_PARTITION[layout] ? `p${ROOT_PARTITION[layout]}` : ''}`;
        expect(r.steps.find((s) => s.step === 'find-root' && s.text.startsWith('/dev/'))?.text).toBe(
          `${rootDevice} ${layout === 'mbr-rhel' || layout === 'gpt-xfs-al2023' ? 'xfs' : layout === 'mbr-ext3' ? 'ext3' : 'ext4'} "ami2docker fixture (${layout})"`,
        );
        expect(await leftovers(r.tmpDir)).toEqual([]);
        return r;
      });

      const { source, image } = await sourceAndImage(layout, env, r.result!.digest);
      const comparison = compareTrees(source, image);
      console.log(`${layout}: ${comparison.compared} entries compared between the disk and the image`);
      expect(comparison.differences).toEqual([]);
      expect(comparison.compared).toBeGreaterThan(300);
      // The pseudo-filesystem mount points had content on the disk and are empty in the image.
      for (const dir of ['/dev', '/proc', '/sys']) {
        expect([...source.keys()].some((p) => p.startsWith(`${dir}/`))).toBe(true);
        expect(image.get(dir)?.type).toBe('dir');
        expect([...image.keys()].filter((p) => p.startsWith(`${dir}/`))).toEqual([]);
      }

      await pull(r.result!.imageUri);
      const { stdout } = await docker('run', '--rm', '--network', 'none', r.result!.imageUri, 'cat', '/etc/os-release');
      expect(stdout).toContain(`PRETTY_NAME="ami2docker fixture (${layout})"`);
    }, 180_000);
  }
});

describe('convert.sh image options', () => {
  it('applies --change instructions, AMI labels and excludes; ping keeps cap_net_raw at run time', async () => {
    const env = conversionEnv({
      A2D_REPOSITORY_URI: repositoryFor('options'),
      A2D_TAGS: 'v1 ami-0123456789abcdef0',
      A2D_AMI_NAME: 'al2023 "quoted" name',
      A2D_CHANGES: [
        'ENV APP_MODE=production GREETING="hello world"',
        'env LEGACY legacy form value',
        'WORKDIR /srv',
        'WORKDIR app',
        'USER 1000:1000',
        'EXPOSE 8080 53/udp',
        'LABEL org.example.team="data plane" version=1',
        'VOLUME ["/data"]',
        'STOPSIGNAL SIGINT',
        'ENTRYPOINT ["/bin/sh", "-c"]',
        'CMD ["echo from-cmd in $PWD"]',
      ].join('\n'),
      A2D_EXCLUDES: ['/usr/share/fixture/deep', '/opt/hardlink-c', '/var/log/', '  /home/*  '].join('\n'),
    });
    const r = await withDisk('gpt-xfs-al2023', (disk) => convert(disk, env));
    expectSuccess(r, env);

    const excluded = ['/usr/share/fixture/deep', '/opt/hardlink-c', '/var/log', '/home/user'];
    const { source, image } = await sourceAndImage('gpt-xfs-al2023', env, r.result!.digest);
    const comparison = compareTrees(source, image, { excluded });
    console.log(`options: ${comparison.compared} entries compared, ${excluded.length} excludes honoured`);
    expect(comparison.differences).toEqual([]);
    for (const p of excluded) expect(source.has(p) && !image.has(p)).toBe(true);
    expect(image.has('/home') && image.has('/var')).toBe(true);
    // The capability travels as an xattr in the layer.
    expect(image.get('/bin/ping')?.xattrs['security.capability']).toBeDefined();

    const uri = r.result!.imageUri;
    await pull(uri);
    const [inspected] = JSON.parse((await docker('inspect', uri)).stdout);
    expect(inspected.Architecture).toBe('amd64');
    expect(inspected.Os).toBe('linux');
    expect(inspected.Created).toBe('2024-03-04T05:06:07Z');
    expect(inspected.Config).toMatchObject({
      Env: expect.arrayContaining(['APP_MODE=production', 'GREETING=hello world', 'LEGACY=legacy form value']),
      WorkingDir: '/srv/app',
      User: '1000:1000',
      ExposedPorts: { '8080/tcp': {}, '53/udp': {} },
      Volumes: { '/data': {} },
      StopSignal: 'SIGINT',
      Entrypoint: ['/bin/sh', '-c'],
      Cmd: ['echo from-cmd in $PWD'],
      Labels: {
        'ami2docker.ami-id': 'ami-0123456789abcdef0',
        'ami2docker.ami-name': 'al2023 "quoted" name',
        'ami2docker.ami-creation-date': AMI_CREATED,
        'ami2docker.region': 'eu-west-1',
        'org.example.team': 'data plane',
        version: '1',
      },
    });

    const { stdout } = await docker('run', '--rm', '--network', 'none', uri);
    expect(stdout.trim()).toBe('from-cmd in /srv/app');
    // As an unprivileged user, the file capability is what lets ping open a raw socket: the same
    // binary without it (busybox) is refused.
    const ping = (...cmd: string[]) => docker('run', '--rm', '--network', 'none', '--user', '1000', '--entrypoint', cmd[0], uri, ...cmd.slice(1));
    await expect(ping('/bin/ping', '-c', '1', '-W', '2', '127.0.0.1')).resolves.toBeDefined();
    await expect(ping('/bin/busybox', 'ping', '-c', '1', '-W', '2', '127.0.0.1')).rejects.toMatchObject({
      stderr: expect.stringContaining('permission denied'),
    });
  }, 180_000);

  it('zstd: pushes an OCI manifest with a zstd layer holding the same tree, for the platform asked', async () => {
    const env = conversionEnv({ A2D_REPOSITORY_URI: repositoryFor('zstd'), A2D_COMPRESSION: 'zstd', A2D_PLATFORM: 'linux/arm64' });
    const r = await withDisk('mbr-ext3', (disk) => convert(disk, env));
    expectSuccess(r, env);
    const fetched = await fetchImage(REGISTRY, repositoryOf(env.A2D_REPOSITORY_URI), 'latest');
    expect(fetched.manifestDigest).toBe(r.result!.digest);
    expect(fetched.manifestMediaType).toBe(OCI_MANIFEST);
    expect(fetched.manifest.config.mediaType).toBe('application/vnd.oci.image.config.v1+json');
    expect(fetched.manifest.layers.map((l) => l.mediaType)).toEqual(['application/vnd.oci.image.layer.v1.tar+zstd']);
    expect([fetched.config.os, fetched.config.architecture]).toEqual(['linux', 'arm64']);
    expect(fetched.config.config.Cmd).toEqual(['/bin/sh']);

    const { source, image } = await sourceAndImage('mbr-ext3', env, r.result!.digest);
    const comparison = compareTrees(source, image);
    console.log(`zstd: ${comparison.compared} entries compared`);
    expect(comparison.differences).toEqual([]);
  }, 120_000);

  it('gzip (the default) pushes a Docker v2 manifest with a gzip layer', async () => {
    const env = conversionEnv({ A2D_REPOSITORY_URI: repositoryFor('gzip'), A2D_COMPRESSION: '' });
    const r = await withDisk('gpt-ext4-ubuntu', (disk) => convert(disk, env));
    expectSuccess(r, env);
    const fetched = await fetchImage(REGISTRY, repositoryOf(env.A2D_REPOSITORY_URI), 'latest');
    expect(fetched.manifestDigest).toBe(r.result!.digest);
    expect(fetched.manifestMediaType).toBe(DOCKER_MANIFEST);
    expect(fetched.manifest.config.mediaType).toBe('application/vnd.docker.container.image.v1+json');
    expect(fetched.manifest.layers.map((l) => l.mediaType)).toEqual(['application/vnd.docker.image.rootfs.diff.tar.gzip']);
  }, 60_000);

  it('rejects an unsupported change before it touches any disk', async () => {
    const tmpDir = await scratch('tmp');
    const env = conversionEnv({ A2D_CHANGES: 'CMD ["/bin/true"]\nRUN rm -rf /' });
    const r = await runConversion({ env, pathPrefix: [shims.dir], tmpDir });
    expect(r.code).not.toBe(0);
    expect(r.error?.step).toBe('config');
    expect(r.error?.message).toContain('unsupported instruction RUN');
    expect(r.steps.map((s) => s.step)).not.toContain('find-disk');
    expect(await leftovers(tmpDir)).toEqual([]);
  });
});

describe('convert.sh tool installation', () => {
  it('installs what the helper lacks with dnf and says how long it took', async () => {
    const toolbox = await toolboxWithout(path.join(work, 'toolbox'), ['pigz']);
    const env = conversionEnv({ A2D_REPOSITORY_URI: repositoryFor('install') });
    const tmpDir = await scratch('tmp');
    const r = await withDisk('plain-ext4', (disk) =>
      runConversion({ env, attachAs: disk.device, pathPrefix: [shims.dir], systemPath: [toolbox.dir], tmpDir }));
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
    expect(await toolbox.dnfLog()).toBe('install -y -q pigz\n');
    const install = r.steps.filter((s) => s.step === 'install').map((s) => s.text);
    expect(install[1]).toMatch(/^installed pigz in \d+\.\d s$/);
    expect(Number(install[1].split(' ')[3])).toBeGreaterThanOrEqual(0.3); // the stand-in dnf takes 0.3 s
    expect(install[2]).toMatch(/^ready in [0-9.]+ s \(compressor: pigz\)$/);
  }, 60_000);
});

describe('convert.sh failures and cleanup', () => {
  it('a disk with no Linux root fails at find-root, says what it found, and leaves nothing mounted', async () => {
    await withDisk('no-root', async (disk) => {
      const tmpDir = await scratch('tmp');
      // Outside any private namespace, found through A2D_DEVICE: whatever the script mounts would
      // still be visible here if it failed to clean up.
      const env = conversionEnv({ A2D_DEVICE: disk.device });
      const r = await runConversion({ env, pathPrefix: [shims.dir], tmpDir, noNamespace: true });
      expect(r.code).not.toBe(0);
      expect(r.result).toBeUndefined();
      expect(r.error?.step).toBe('find-root');
      expect(r.error?.message).toBe(`no Linux root filesystem (etc/os-release) on ${disk.device}: ${disk.device.slice(5)}p1: ext4 without etc/os-release`);
      expect(await mountsOf([disk.device, ...disk.partitions])).toEqual([]);
      expect(await leftovers(tmpDir)).toEqual([]);
    });
  });

  it('a push failure after mounting still unmounts and removes its files', async () => {
    await withDisk('mbr-rhel', async (disk) => {
      const tmpDir = await scratch('tmp');
      const env = conversionEnv({ A2D_DEVICE: disk.device, A2D_REPOSITORY_URI: '127.0.0.1:9/nowhere/image' });
      const r = await runConversion({ env, pathPrefix: [shims.dir], tmpDir, noNamespace: true });
      expect(r.code).not.toBe(0);
      expect(r.steps.map((s) => s.step)).toContain('mount');
      expect(r.error?.step).toBe('login');
      expect(r.error?.message).toContain('http://127.0.0.1:9 answered 000');
      expect(await mountsOf([disk.device, ...disk.partitions])).toEqual([]);
      expect(await leftovers(tmpDir)).toEqual([]);
    });
  });

  it('waits for the volume to appear, then fails at find-disk with what it looked for', async () => {
    const tmpDir = await scratch('tmp');
    const env = conversionEnv({ A2D_DEVICE: '/dev/sdz', A2D_DISK_WAIT_SECONDS: '2' });
    const started = Date.now();
    const r = await runConversion({ env, pathPrefix: [shims.dir], tmpDir });
    expect(Date.now() - started).toBeGreaterThanOrEqual(2000);
    expect(r.code).not.toBe(0);
    expect(r.error?.step).toBe('find-disk');
    expect(r.error?.message).toContain(`no block device for ${env.A2D_VOLUME_ID} after 2 s`);
    expect(r.error?.message).toContain('/dev/sdz /dev/xvdz');
  });

  it('lvm: converts the root logical volume where device-mapper exists, else says why it is skipped', async () => {
    const file = path.join(work, 'lvm.img');
    const built = await makeDisk('lvm', file);
    if (!built.built) {
      console.log(`lvm layout skipped: ${built.skipped}`);
      expect(built.skipped).toMatch(/device-mapper|lvm2/);
      return;
    }
    images.set('lvm', file);
    const env = conversionEnv({ A2D_REPOSITORY_URI: repositoryFor('lvm') });
    const r = await withDisk('lvm', (disk) => convert(disk, env));
    expectSuccess(r, env);
    expect(r.steps.find((s) => s.step === 'find-root' && s.text.startsWith('/dev/'))?.text).toContain('"ami2docker fixture (lvm)"');
  }, 120_000);
});

/** A registry front that demands HTTP Basic `AWS:<password>` (as ECR does) and forwards to the real one. */
async function authenticatingRegistry(password: string): Promise<{ address: string; accepted: number; rejected: number; close(): Promise<void> }> {
  const expected = `Basic ${Buffer.from(`AWS:${password}`).toString('base64')}`;
  const [upstreamHost, upstreamPort] = REGISTRY.split(':');
  const state = { accepted: 0, rejected: 0 };
  const server = http.createServer((req, res) => {
    if (req.headers.authorization !== expected) {
      state.rejected++;
      res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="test"', 'Content-Type': 'application/json' });
      res.end('{"errors":[{"code":"UNAUTHORIZED"}]}');
      req.resume();
      return;
    }
    state.accepted++;
    const upstream = http.request(
      { host: upstreamHost, port: Number(upstreamPort ?? 80), method: req.method, path: req.url, headers: req.headers },
      (response) => {
        res.writeHead(response.statusCode ?? 502, response.headers);
        response.pipe(res);
      },
    );
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    address: `127.0.0.1:${port}`,
    get accepted() { return state.accepted; },
    get rejected() { return state.rejected; },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe('convert.sh registry login', () => {
  it('sends the instance-role password as Basic auth and never shows it in output or argv', async () => {
    const registry = await authenticatingRegistry(PASSWORD);
    try {
      const env = conversionEnv({ A2D_REPOSITORY_URI: `${registry.address}/a2d-remote-${SUITE}/auth` });
      const r = await withDisk('plain-ext4', (disk) => convert(disk, env));
      expectSuccess(r, env);
      expect(registry.rejected).toBe(0);
      expect(registry.accepted).toBeGreaterThanOrEqual(6);
      const curlArgv = await shims.curlArgv();
      expect(curlArgv).toContain('PATCH');
      expect(curlArgv).not.toContain(PASSWORD);
      expect(curlArgv).not.toContain(Buffer.from(`AWS:${PASSWORD}`).toString('base64'));
      // The image is really there, in the registry behind the front.
      const fetched = await fetchImage(REGISTRY, `a2d-remote-${SUITE}/auth`, 'latest');
      expect(fetched.manifestDigest).toBe(r.result!.digest);
    } finally {
      await registry.close();
    }
  }, 120_000);

  it('fails at login when the registry rejects the credentials', async () => {
    const registry = await authenticatingRegistry(`not-${PASSWORD}`);
    try {
      const env = conversionEnv({ A2D_REPOSITORY_URI: `${registry.address}/a2d-remote-${SUITE}/rejected` });
      const r = await withDisk('plain-ext4', (disk) => convert(disk, env));
      expect(r.code).not.toBe(0);
      expect(r.error).toEqual({ step: 'login', message: 'the registry requires credentials and rejected ours (instance role credentials)' });
      expect(r.stdout + r.stderr).not.toContain(PASSWORD);
      expect(await leftovers(r.tmpDir)).toEqual([]);
    } finally {
      await registry.close();
    }
  }, 60_000);

  it('pushes anonymously when no ECR password can be had and the registry needs none', async () => {
    const anonymous = await makeShims(path.join(work, 'bin-anonymous'), undefined);
    const env = conversionEnv({ A2D_REPOSITORY_URI: repositoryFor('anonymous') });
    const r = await withDisk('plain-ext4', (disk) => convert(disk, env, anonymous.dir));
    expectSuccess(r, env);
    expect(r.steps.find((s) => s.step === 'login' && s.text.startsWith('ok'))?.text).toContain('anonymous (no ECR password: Unable to locate credentials');
  }, 60_000);
});

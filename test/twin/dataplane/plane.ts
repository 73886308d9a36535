// The real machinery behind EC2's state changes: volume files, loop devices, instance namespaces.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TwinConfig } from '../context.js';
import type { Ec2Hooks } from '../services/ec2.js';
import type { Instance, Snapshot, Volume } from '../services/ec2-resources.js';
import { InstanceRuntime, type Execution } from './instances.js';
import { attachLoop, blankDisk, copyDisk, detachLoop, removeDisk, type LoopDevice } from './volumes.js';

const GiB = 2 ** 30;

/** The name udev gives an EBS volume on a Nitro instance: the volume id without its dash. */
export function ebsDeviceName(volumeId: string): string {
  return `nvme-Amazon_Elastic_Block_Store_${volumeId.replace('-', '')}`;
}

/** by-id names for a volume and its partitions (`...-part1` → `/dev/loop3p1`), as udev makes them. */
function deviceLinks(volumeId: string, loop: LoopDevice): [string, string][] {
  const name = ebsDeviceName(volumeId);
  return [[name, loop.device], ...loop.partitions.map((p): [string, string] => [`${name}-part${/p(\d+)$/.exec(p)![1]}`, p])];
}

export class DataPlane implements Ec2Hooks {
  private readonly runtimes = new Map<string, InstanceRuntime>();
  private readonly loops = new Map<string, LoopDevice>();
  private readonly files = new Set<string>();
  /** Work under way (copies, attaches, boots), which shutdown waits for before undoing it all. */
  private readonly inflight = new Set<Promise<unknown>>();
  private closed = false;

  constructor(
    private readonly config: TwinConfig,
    /** The access key an instance's processes sign with, when it has a role. */
    private readonly credentialsFor: (instance: Instance) => { accessKeyId: string; secretAccessKey: string } | undefined,
  ) {
    mkdirSync(this.volumeDir, { recursive: true });
  }

  private get volumeDir(): string {
    return join(this.config.stateDir, 'volumes');
  }

  instanceDir(instanceId: string): string {
    return join(this.config.stateDir, 'instances', instanceId);
  }

  runtime(instanceId: string): InstanceRuntime | undefined {
    return this.runtimes.get(instanceId);
  }

  // ---- volumes -------------------------------------------------------------------------------

  /** Runs work that makes something shutdown must undo; refused once shutdown has begun. */
  private guard(work: () => Promise<void>): Promise<void> {
    if (this.closed) return Promise.reject(new Error('the twin is shutting down'));
    const promise = work();
    this.inflight.add(promise);
    const forget = () => this.inflight.delete(promise);
    promise.then(forget, forget);
    return promise;
  }

  createVolumeData(volume: Volume, snapshot: Snapshot | undefined): Promise<void> {
    return this.guard(() => this.makeVolumeFile(volume, snapshot));
  }

  private async makeVolumeFile(volume: Volume, snapshot: Snapshot | undefined): Promise<void> {
    const file = join(this.volumeDir, `${volume.id}.img`);
    this.files.add(file);
    if (snapshot?.disk) await copyDisk(snapshot.disk, file, volume.sizeGiB * GiB);
    else await blankDisk(file, volume.sizeGiB * GiB);
    volume.file = file;
  }

  async deleteVolumeData(volume: Volume): Promise<void> {
    const loop = this.loops.get(volume.id);
    if (loop) {
      this.loops.delete(volume.id);
      await detachLoop(loop);
    }
    if (volume.file) {
      await removeDisk(volume.file);
      this.files.delete(volume.file);
    }
  }

  attach(instance: Instance, volume: Volume): Promise<void> {
    return this.guard(() => this.attachNow(instance, volume));
  }

  private async attachNow(instance: Instance, volume: Volume): Promise<void> {
    // A root volume left behind by a terminated instance has no blocks here yet.
    if (!volume.file) await this.makeVolumeFile(volume, undefined);
    const loop = await attachLoop(volume.file!);
    this.loops.set(volume.id, loop);
    const runtime = this.runtimes.get(instance.id);
    if (!runtime) return;
    for (const [name, target] of deviceLinks(volume.id, loop)) await runtime.link(name, target);
  }

  async detach(instance: Instance, volume: Volume): Promise<void> {
    const loop = this.loops.get(volume.id);
    if (!loop) return;
    const runtime = this.runtimes.get(instance.id);
    await runtime?.unlink(deviceLinks(volume.id, loop).map(([name]) => name)).catch(() => undefined);
    this.loops.delete(volume.id);
    await detachLoop(loop);
  }

  // ---- instances -----------------------------------------------------------------------------

  boot(instance: Instance): Promise<void> {
    return this.guard(async () => {
      const runtime = await InstanceRuntime.start({
        instanceId: instance.id,
        dir: this.instanceDir(instance.id),
        twinUrl: this.config.url,
        region: this.config.region,
        credentials: this.credentialsFor(instance),
      });
      this.runtimes.set(instance.id, runtime);
    });
  }

  /** Runs the user data if it is a script (`#!`); cloud-config and the rest are cloud-init's business. */
  async started(instance: Instance): Promise<void> {
    const runtime = this.runtimes.get(instance.id);
    if (this.closed || !runtime || !instance.userData || !instance.userData.subarray(0, 2).equals(Buffer.from('#!'))) return;
    const dir = this.instanceDir(instance.id);
    const script = join(dir, 'user-data');
    writeFileSync(script, instance.userData, { mode: 0o700 });
    const log = join(dir, 'user-data.log');
    await runtime.execute(script, dir, log, log).done;
  }

  async halt(instance: Instance): Promise<void> {
    const runtime = this.runtimes.get(instance.id);
    if (!runtime) return;
    this.runtimes.delete(instance.id);
    await runtime.stop();
  }

  /** Runs a script file inside a running instance. */
  execute(instanceId: string, file: string, cwd: string, stdout: string, stderr: string): Execution {
    const runtime = this.runtimes.get(instanceId);
    if (!runtime) throw new Error(`instance ${instanceId} is not running`);
    return runtime.execute(file, cwd, stdout, stderr);
  }

  /** Stops every instance, detaches every loop device and deletes every volume file. */
  async shutdown(): Promise<void> {
    this.closed = true;
    await Promise.allSettled([...this.inflight]);
    await Promise.allSettled([...this.runtimes.values()].map((r) => r.stop()));
    this.runtimes.clear();
    for (const loop of this.loops.values()) await detachLoop(loop).catch((e) => console.error('twin:', e));
    this.loops.clear();
    for (const file of this.files) await removeDisk(file).catch(() => undefined);
    this.files.clear();
  }
}

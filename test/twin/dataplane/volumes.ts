// Volume blocks are sparse files; attaching one makes it a loop device with partition nodes,
// which is what a block device looks like to the tools a conversion uses (blkid, mount, ...).
import { existsSync, lstatSync, readdirSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { basename } from 'node:path';
import { run } from './exec.js';

/** A copy of the snapshot's disk (sparse, or shared blocks where the filesystem can), grown to size. */
export async function copyDisk(source: string, destination: string, sizeBytes: number): Promise<void> {
  await run('cp', ['--sparse=always', '--reflink=auto', source, destination]);
  await run('truncate', ['--size', `>${sizeBytes}`, destination]);
}

export async function blankDisk(destination: string, sizeBytes: number): Promise<void> {
  await run('truncate', ['--size', String(sizeBytes), destination]);
}

export async function removeDisk(file: string): Promise<void> {
  await rm(file, { force: true });
}

export interface LoopDevice {
  device: string;
  /** Partition nodes (`/dev/loop3p1`, ...), in partition order. */
  partitions: string[];
}

export async function attachLoop(file: string): Promise<LoopDevice> {
  const device = (await run('losetup', ['--partscan', '--find', '--show', file])).trim();
  // Without udev the kernel does not always make partition nodes: ask partx to add them.
  await run('partx', ['-u', device]).catch(() => undefined);
  await run('partx', ['-a', device]).catch(() => undefined);
  const partitions = partitionsOf(device);
  for (const node of partitions) await waitForBlockDevice(node);
  return { device, partitions };
}

/** devtmpfs makes the node shortly after the kernel adds the partition. */
async function waitForBlockDevice(node: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(existsSync(node) && lstatSync(node).isBlockDevice())) {
    if (Date.now() > deadline) throw new Error(`${node} did not appear`);
    await sleep(50);
  }
}

function partitionsOf(device: string): string[] {
  const name = basename(device);
  const sys = `/sys/block/${name}`;
  if (!existsSync(sys)) return [];
  return readdirSync(sys)
    .filter((entry) => entry.startsWith(`${name}p`))
    .sort((a, b) => Number(a.slice(name.length + 1)) - Number(b.slice(name.length + 1)))
    .map((entry) => `/dev/${entry}`);
}

/** Detaches a loop device; one still busy (mounted) is freed by the kernel once released. */
export async function detachLoop(loop: LoopDevice): Promise<void> {
  await run('losetup', ['--detach', loop.device]);
}

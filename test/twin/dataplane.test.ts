// The twin's real data plane: volumes as loop devices under their EBS names inside an instance's
// own mount namespace, commands run there for real (output, truncation, timeouts, cancel, S3),
// user data that shuts the instance down, and nothing left behind when the twin is stopped.
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import {
  AttachVolumeCommand, CreateVolumeCommand, DescribeImagesCommand, DescribeInstancesCommand, DescribeVolumesCommand, ModifyInstanceAttributeCommand, TerminateInstancesCommand,
  waitUntilInstanceRunning, waitUntilInstanceStopped, waitUntilInstanceTerminated, waitUntilVolumeAvailable,
} from '@aws-sdk/client-ec2';
import { CreateBucketCommand, GetObjectCommand } from '@aws-sdk/client-s3';
import { CancelCommandCommand, GetCommandInvocationCommand, SendCommandCommand } from '@aws-sdk/client-ssm';
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readlinkSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { makeDisk } from '../fixtures/disk.js';
import { startTwin, type RunningTwin } from '../support/twin.js';
import { clientsFor, createHelperProfile, finalInvocation, helperImageId, runInstance, runScript, waitFor, waitOnline, type Clients } from './harness.js';

jest.setTimeout(120_000);

const execFileAsync = promisify(execFile);
const TIME_SCALE = 0.02;
const waiter = (clients: Clients) => ({ client: clients.ec2, minDelay: 0.05, maxDelay: 0.2, maxWaitTime: 60 });

let work: string;
let disk: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'twin-dataplane-'));
  disk = join(work, 'ubuntu.img');
  const built = await makeDisk('gpt-ext4-ubuntu', disk, { size: '128M' });
  if (!built.built) throw new Error(`cannot build the fixture disk: ${built.skipped}`);
}, 300_000);

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

/** Loop devices backed by files under `dir`. */
async function loopsUnder(dir: string): Promise<string[]> {
  const { stdout } = await execFileAsync('losetup', ['--list', '--noheadings', '--output', 'NAME,BACK-FILE']);
  return stdout.split('\n').filter((line) => line.includes(dir)).map((line) => line.trim().split(/\s+/)[0]);
}

/** Processes whose mount namespace is `namespace` (`mnt:[...]`). */
function processesIn(namespace: string): number[] {
  return readdirSync('/proc').filter((p) => /^\d+$/.test(p)).filter((p) => {
    try {
      return readlinkSync(`/proc/${p}/ns/mnt`) === namespace;
    } catch {
      return false;
    }
  }).map(Number);
}

describe('an instance with an attached volume', () => {
  let twin: RunningTwin;
  let clients: Clients;
  let instanceId: string;
  let volumeId: string;

  beforeAll(async () => {
    twin = await startTwin({ amis: [{ name: 'ubuntu-fixture', disk, architecture: 'x86_64' }], timeScale: TIME_SCALE });
    clients = clientsFor(twin);
    await createHelperProfile(clients, 'helper', ['s3:PutObject']);
    await clients.s3.send(new CreateBucketCommand({ Bucket: 'command-output' }));
    instanceId = await runInstance(clients, { ImageId: await helperImageId(clients), InstanceType: 't3.micro', IamInstanceProfile: { Name: 'helper' } });
    const { Reservations } = await clients.ec2.send(new DescribeInstancesCommand({ InstanceIds: [instanceId] }));
    const az = Reservations![0].Instances![0].Placement!.AvailabilityZone!;
    const { Images } = await clients.ec2.send(new DescribeImagesCommand({ Owners: ['self'] }));
    const snapshot = Images![0].BlockDeviceMappings![0].Ebs!.SnapshotId!;
    ({ VolumeId: volumeId } = await clients.ec2.send(new CreateVolumeCommand({ SnapshotId: snapshot, AvailabilityZone: az })) as { VolumeId: string });
    await waitUntilVolumeAvailable(waiter(clients), { VolumeIds: [volumeId] });
    await waitOnline(clients, instanceId);
    await clients.ec2.send(new AttachVolumeCommand({ VolumeId: volumeId, InstanceId: instanceId, Device: '/dev/sdf' }));
    await waitFor('attached', async () => {
      const { Volumes } = await clients.ec2.send(new DescribeVolumesCommand({ VolumeIds: [volumeId] }));
      return Volumes![0].Attachments?.[0]?.State === 'attached' ? true : undefined;
    });
  }, 120_000);

  afterAll(async () => {
    clients?.destroy();
    await twin?.stop();
  });

  const byId = () => `/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_${volumeId.replace('-', '')}`;

  it('shows the volume under its EBS by-id name, partitions included, only inside the instance', async () => {
    const invocation = await runScript(clients, instanceId, [
      'set -e',
      `readlink ${byId()}`,
      `readlink ${byId()}-part1`,
      `mkdir -p /mnt/root && mount -o ro ${byId()}-part1 /mnt/root`,
      'grep ^ID= /mnt/root/etc/os-release',
      'umount /mnt/root',
    ]);
    expect(invocation.Status).toBe('Success');
    const [disk1, part1, osId] = invocation.StandardOutputContent!.trim().split('\n');
    expect(disk1).toMatch(/^\/dev\/loop\d+$/);
    expect(part1).toBe(`${disk1}p1`);
    expect(osId).toMatch(/^ID=/);
    expect(existsSync(byId())).toBe(false);
    expect(await loopsUnder(twin.stateDir)).toEqual([disk1]);
  });

  it('gives the first 24,000 bytes of stdout and 8,000 of stderr, and all of it in S3', async () => {
    const invocation = await runScript(clients, instanceId, [
      "head -c 30000 /dev/zero | tr '\\0' o",
      "head -c 9000 /dev/zero | tr '\\0' e >&2",
    ], { bucket: 'command-output', prefix: 'runs/r1/' });
    expect(invocation.Status).toBe('Success');
    expect(invocation.StandardOutputContent).toHaveLength(24000);
    expect(invocation.StandardOutputContent!.endsWith('--output truncated--')).toBe(true);
    expect(invocation.StandardErrorContent).toHaveLength(8000);
    const key = `runs/r1/${invocation.CommandId}/${instanceId}/awsrunShellScript/0.awsrunShellScript/stdout`;
    expect(invocation.StandardOutputUrl).toBe(`https://s3.us-east-1.amazonaws.com/command-output/${key}`);
    const object = await clients.s3.send(new GetObjectCommand({ Bucket: 'command-output', Key: key }));
    expect((await object.Body!.transformToString()).length).toBe(30000);
  });

  it('shows output growing while the command runs', async () => {
    const { Command } = await clients.ssm.send(new SendCommandCommand({
      InstanceIds: [instanceId], DocumentName: 'AWS-RunShellScript', Parameters: { commands: ['echo first', 'sleep 3', 'echo second'] },
    }));
    const partial = await waitFor('the first line', async () => {
      try {
        const i = await clients.ssm.send(new GetCommandInvocationCommand({ CommandId: Command!.CommandId, InstanceId: instanceId }));
        return i.StandardOutputContent === 'first\n' ? i : undefined;
      } catch {
        return undefined;
      }
    });
    expect(partial.Status).toBe('InProgress');
    const done = await finalInvocation(clients, Command!.CommandId!, instanceId);
    expect([done.Status, done.StandardOutputContent]).toEqual(['Success', 'first\nsecond\n']);
  });

  it('kills a command at its executionTimeout, and one that is cancelled, with everything it started', async () => {
    const timedOut = await runScript(clients, instanceId, ['sleep 7.25 & sleep 7.5; echo not reached'], { executionTimeout: 1 });
    expect([timedOut.Status, timedOut.StatusDetails, timedOut.ResponseCode]).toEqual(['TimedOut', 'ExecutionTimedOut', 137]);
    const { Command } = await clients.ssm.send(new SendCommandCommand({
      InstanceIds: [instanceId], DocumentName: 'AWS-RunShellScript', Parameters: { commands: ['sleep 8.5'] },
    }));
    await waitFor('the command to start', async () => {
      const i = await clients.ssm.send(new GetCommandInvocationCommand({ CommandId: Command!.CommandId, InstanceId: instanceId })).catch(() => undefined);
      return i?.Status === 'InProgress' ? true : undefined;
    });
    await clients.ssm.send(new CancelCommandCommand({ CommandId: Command!.CommandId }));
    const cancelled = await finalInvocation(clients, Command!.CommandId!, instanceId);
    expect(cancelled.Status).toBe('Cancelled');
    const { stdout } = await execFileAsync('ps', ['-eo', 'args']);
    expect(stdout.split('\n').filter((line) => /^sleep (7\.25|7\.5|8\.5)$/.test(line))).toEqual([]);
  });

  it('runs commands as root with the instance role\'s identity and the twin as endpoint', async () => {
    const invocation = await runScript(clients, instanceId, ['id -u', 'aws sts get-caller-identity --query Arn --output text']);
    expect(invocation.StandardOutputContent).toBe(`0\narn:aws:sts::123456789012:assumed-role/helper/${instanceId}\n`);
  });
});

describe('user data', () => {
  let twin: RunningTwin;
  let clients: Clients;

  beforeAll(async () => {
    twin = await startTwin({ timeScale: TIME_SCALE });
    clients = clientsFor(twin);
  });

  afterAll(async () => {
    clients?.destroy();
    await twin?.stop();
  });

  async function launchWithShutdown(behaviour: 'terminate' | 'stop', command = 'shutdown -h +1 "ami2docker dead-man switch"'): Promise<string> {
    const userData = Buffer.from(`#!/bin/sh\n${command}\n`).toString('base64');
    return runInstance(clients, { ImageId: await helperImageId(clients), InstanceType: 't3.micro', UserData: userData, InstanceInitiatedShutdownBehavior: behaviour });
  }

  it('`shutdown -h +1` terminates the instance and deletes a DeleteOnTermination volume', async () => {
    const instanceId = await launchWithShutdown('terminate');
    await waitUntilInstanceRunning(waiter(clients), { InstanceIds: [instanceId] });
    const az = (await clients.ec2.send(new DescribeInstancesCommand({ InstanceIds: [instanceId] }))).Reservations![0].Instances![0].Placement!.AvailabilityZone!;
    const { VolumeId } = await clients.ec2.send(new CreateVolumeCommand({ AvailabilityZone: az, Size: 1 }));
    await waitUntilVolumeAvailable(waiter(clients), { VolumeIds: [VolumeId!] });
    await clients.ec2.send(new AttachVolumeCommand({ VolumeId, InstanceId: instanceId, Device: '/dev/sdf' }));
    await clients.ec2.send(new ModifyInstanceAttributeCommand({ InstanceId: instanceId, BlockDeviceMappings: [{ DeviceName: '/dev/sdf', Ebs: { DeleteOnTermination: true } }] }));
    await waitFor('a loop device', async () => ((await loopsUnder(twin.stateDir)).length === 1 ? true : undefined));

    await waitUntilInstanceTerminated(waiter(clients), { InstanceIds: [instanceId] });
    const instance = (await clients.ec2.send(new DescribeInstancesCommand({ InstanceIds: [instanceId] }))).Reservations![0].Instances![0];
    expect(instance.StateReason?.Code).toBe('Client.InstanceInitiatedShutdown');
    const gone = await clients.ec2.send(new DescribeVolumesCommand({ VolumeIds: [VolumeId!] })).catch((e: Error) => e.name);
    expect(gone).toBe('InvalidVolume.NotFound');
    await waitFor('the loop device to go', async () => ((await loopsUnder(twin.stateDir)).length === 0 ? true : undefined));
    expect(readdirSync(join(twin.stateDir, 'volumes'))).toEqual([]);
  });

  it('`shutdown -h +1` stops an instance whose shutdown behaviour is stop', async () => {
    const instanceId = await launchWithShutdown('stop');
    // The SDK's stopped waiter gives up on a pending instance.
    await waitUntilInstanceRunning(waiter(clients), { InstanceIds: [instanceId] });
    await waitUntilInstanceStopped(waiter(clients), { InstanceIds: [instanceId] });
    await clients.ec2.send(new TerminateInstancesCommand({ InstanceIds: [instanceId] }));
  });

  it('`poweroff`, even by its absolute path, reaches the twin, never the host', async () => {
    const instanceId = await launchWithShutdown('terminate', '/usr/sbin/poweroff');
    // Too quick for the SDK's waiters, which give up on an instance they never saw running.
    const instance = await waitFor('termination', async () => {
      const found = (await clients.ec2.send(new DescribeInstancesCommand({ InstanceIds: [instanceId] }))).Reservations![0].Instances![0];
      return found.State?.Name === 'terminated' ? found : undefined;
    });
    expect(instance.StateReason?.Code).toBe('Client.InstanceInitiatedShutdown');
  });
});

describe('stopping the twin', () => {
  it('leaves no instance process, mount or loop device behind, even with a volume mounted inside', async () => {
    const twin = await startTwin({ amis: [{ name: 'ubuntu-fixture', disk, architecture: 'x86_64' }], timeScale: TIME_SCALE });
    const clients = clientsFor(twin);
    let namespace = '';
    let device = '';
    try {
      await createHelperProfile(clients, 'helper');
      const instanceId = await runInstance(clients, { ImageId: await helperImageId(clients), InstanceType: 't3.micro', IamInstanceProfile: { Name: 'helper' } });
      const { Reservations } = await clients.ec2.send(new DescribeInstancesCommand({ InstanceIds: [instanceId] }));
      const snapshot = (await clients.ec2.send(new DescribeImagesCommand({ Owners: ['self'] }))).Images![0].BlockDeviceMappings![0].Ebs!.SnapshotId;
      const { VolumeId } = await clients.ec2.send(new CreateVolumeCommand({ SnapshotId: snapshot, AvailabilityZone: Reservations![0].Instances![0].Placement!.AvailabilityZone }));
      await waitUntilVolumeAvailable(waiter(clients), { VolumeIds: [VolumeId!] });
      await waitOnline(clients, instanceId);
      await clients.ec2.send(new AttachVolumeCommand({ VolumeId, InstanceId: instanceId, Device: '/dev/sdf' }));
      await waitFor('attached', async () => {
        const { Volumes } = await clients.ec2.send(new DescribeVolumesCommand({ VolumeIds: [VolumeId!] }));
        return Volumes![0].Attachments?.[0]?.State === 'attached' ? true : undefined;
      });
      const link = `/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_${VolumeId!.replace('-', '')}`;
      const invocation = await runScript(clients, instanceId, [
        'set -e', 'readlink /proc/self/ns/mnt', `readlink ${link}`, `mkdir -p /mnt/held && mount -o ro ${link}-part1 /mnt/held`,
      ]);
      expect([invocation.Status, invocation.StandardErrorContent]).toEqual(['Success', '']);
      [namespace, device] = invocation.StandardOutputContent!.trim().split('\n');
      expect(processesIn(namespace).length).toBeGreaterThan(0);
    } finally {
      clients.destroy();
      await twin.stop();
    }
    await waitFor('the namespace to empty', async () => (processesIn(namespace).length === 0 ? true : undefined), 10_000);
    await waitFor('the loop device to be released', async () => ((await loopsUnder(twin.stateDir)).length === 0 ? true : undefined), 10_000);
    const { stdout } = await execFileAsync('losetup', ['--list', '--noheadings', '--output', 'NAME']);
    expect(stdout.split('\n').map((l) => l.trim())).not.toContain(device);
    expect(existsSync(twin.stateDir)).toBe(false);
  });
});

// AWS-RunShellScript as the SSM agent runs it: the commands joined by newlines into _script.sh,
// run as root with `sh -c`, killed (process tree and all) when executionTimeout passes.
import { closeSync, mkdirSync, openSync, readFileSync, readSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DataPlane } from './plane.js';

export type RunStatus = 'InProgress' | 'Success' | 'Failed' | 'TimedOut' | 'Cancelled';

export interface RunResult { status: Exclude<RunStatus, 'InProgress'>; exitCode: number }

/** The agent's exit code for a command it stopped (timeout or cancel): 128 + SIGKILL. */
export const STOPPED_EXIT_CODE = 137;

export interface CommandRun {
  stdoutPath: string;
  stderrPath: string;
  done: Promise<RunResult>;
  cancel(): Promise<void>;
}

export function commandDir(plane: DataPlane, instanceId: string, commandId: string): string {
  return join(plane.instanceDir(instanceId), 'commands', commandId);
}

/** Files for a command's output, created empty so readers never find them missing. */
export function outputFiles(dir: string): { stdoutPath: string; stderrPath: string } {
  mkdirSync(dir, { recursive: true });
  const stdoutPath = join(dir, 'stdout');
  const stderrPath = join(dir, 'stderr');
  writeFileSync(stdoutPath, '', { flag: 'a' });
  writeFileSync(stderrPath, '', { flag: 'a' });
  return { stdoutPath, stderrPath };
}

export function startCommand(plane: DataPlane, instanceId: string, commandId: string, commands: string[], timeoutSeconds: number): CommandRun {
  const dir = commandDir(plane, instanceId, commandId);
  const { stdoutPath, stderrPath } = outputFiles(dir);
  const script = join(dir, '_script.sh');
  writeFileSync(script, `${commands.join('\n')}\n`, { mode: 0o700 });
  const execution = plane.execute(instanceId, script, dir, stdoutPath, stderrPath);
  let stopped: 'TimedOut' | 'Cancelled' | undefined;
  const timer = setTimeout(() => {
    stopped = 'TimedOut';
    void execution.kill();
  }, timeoutSeconds * 1000);
  const done = execution.done.then(({ code }): RunResult => {
    clearTimeout(timer);
    if (stopped) return { status: stopped, exitCode: STOPPED_EXIT_CODE };
    if (code === 0) return { status: 'Success', exitCode: 0 };
    return { status: 'Failed', exitCode: code ?? STOPPED_EXIT_CODE };
  });
  return {
    stdoutPath,
    stderrPath,
    done,
    cancel: async () => {
      stopped ??= 'Cancelled';
      await execution.kill();
    },
  };
}

export const TRUNCATED_SUFFIX = '--output truncated--';

/**
 * The start of an output file as GetCommandInvocation shows it: the agent reads up to `limit`
 * bytes and, when it got that many, keeps `limit - suffix` of them and appends the suffix.
 */
export function readPrefix(path: string, limit: number): string {
  let data: Buffer;
  try {
    const fd = openSync(path, 'r');
    try {
      const buffer = Buffer.alloc(limit);
      const read = readSync(fd, buffer, 0, limit, 0);
      data = buffer.subarray(0, read);
    } finally {
      closeSync(fd);
    }
  } catch {
    return '';
  }
  if (data.length < limit) return data.toString('utf8');
  return data.subarray(0, limit - TRUNCATED_SUFFIX.length).toString('utf8') + TRUNCATED_SUFFIX;
}

export function readAll(path: string): Buffer {
  try {
    return readFileSync(path);
  } catch {
    return Buffer.alloc(0);
  }
}

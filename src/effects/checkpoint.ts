// The run's checkpoint: one JSON file per run, written synchronously after every transition so the
// file on disk never lags behind a request already on the wire. Writes are atomic (temp file, fsync,
// rename), keep the previous good copy, and are readable by the owner only. A lock stops two
// processes driving one run.
import {
  chmodSync, closeSync, copyFileSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync, utimesSync, writeSync,
} from 'node:fs';
import { homedir, hostname } from 'node:os';
import { join } from 'node:path';
import type { ConversionContext, FinalState } from '../machine/conversion.js';

export const CHECKPOINT_SCHEMA = 1;
const HISTORY_LIMIT = 1000;

export interface HistoryEntry { at: string; state: string }

export interface Checkpoint {
  schema: number;
  runId: string;
  createdAt: string;
  updatedAt: string;
  /** Dotted state path, e.g. `working.provisioning`; a final state name once the run has ended. */
  state: string;
  final?: FinalState;
  accountId?: string;
  region: string;
  context: ConversionContext;
  history: HistoryEntry[];
  /** xstate's persisted snapshot, restored by `resume`. */
  snapshot: unknown;
}

export class CheckpointError extends Error {
  override name = 'CheckpointError';
}

export function defaultStateDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.AMI2DOCKER_STATE_DIR) return env.AMI2DOCKER_STATE_DIR;
  const base = env.XDG_STATE_HOME || join(homedir(), '.local', 'state');
  return join(base, 'ami2docker');
}

/** `{ working: { provisioning: { volume: 'creating' } } }` → `working.provisioning` (parallel regions elided). */
export function stateName(value: unknown): string {
  const parts: string[] = [];
  let node = value;
  while (node && typeof node === 'object') {
    const keys = Object.keys(node);
    if (keys.length !== 1) break;
    parts.push(keys[0]!);
    node = (node as Record<string, unknown>)[keys[0]!];
  }
  if (typeof node === 'string') parts.push(node);
  return parts.join('.');
}

function writeAtomically(path: string, text: string): void {
  const temp = `${path}.${process.pid}.tmp`;
  const fd = openSync(temp, 'w', 0o600);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(temp, path);
}

export class CheckpointStore {
  readonly runsDir: string;

  constructor(readonly stateDir: string = defaultStateDir()) {
    this.runsDir = join(stateDir, 'runs');
  }

  pathOf(runId: string): string {
    return join(this.runsDir, `${runId}.json`);
  }

  /** Writes the checkpoint; the copy it replaces becomes `<run>.json.prev`. */
  save(checkpoint: Checkpoint): void {
    mkdirSync(this.runsDir, { recursive: true, mode: 0o700 });
    const path = this.pathOf(checkpoint.runId);
    if (existsSync(path)) {
      copyFileSync(path, `${path}.prev`);
      chmodSync(`${path}.prev`, 0o600);
    }
    writeAtomically(path, `${JSON.stringify(checkpoint, null, 2)}\n`);
  }

  load(runId: string): Checkpoint {
    const path = this.pathOf(runId);
    if (!existsSync(path) && !existsSync(`${path}.prev`)) {
      throw new CheckpointError(`no run '${runId}' in ${this.runsDir}: see 'ami2docker list'`);
    }
    const problems: string[] = [];
    for (const candidate of [path, `${path}.prev`]) {
      try {
        const checkpoint = JSON.parse(readFileSync(candidate, 'utf8')) as Checkpoint;
        if (checkpoint.schema > CHECKPOINT_SCHEMA) {
          throw new CheckpointError(
            `run '${runId}' was written by a newer ami2docker (checkpoint schema ${checkpoint.schema}, this one reads ${CHECKPOINT_SCHEMA}): upgrade ami2docker to resume it`,
          );
        }
        if (checkpoint.runId !== runId || !checkpoint.context?.plan || !checkpoint.snapshot) throw new Error('fields missing');
        return checkpoint;
      } catch (error) {
        if (error instanceof CheckpointError) throw error;
        problems.push(`${candidate}: ${(error as Error).message}`);
      }
    }
    throw new CheckpointError(
      `the checkpoint of run '${runId}' is unreadable (${problems.join('; ')}): run 'ami2docker cleanup --orphans' to find what it left in AWS`,
    );
  }

  /** Every run on this machine, oldest first; unreadable ones are reported with `error`. */
  list(): { runId: string; checkpoint?: Checkpoint; error?: string }[] {
    if (!existsSync(this.runsDir)) return [];
    return readdirSync(this.runsDir)
      .filter((file) => file.endsWith('.json'))
      .map((file) => file.slice(0, -'.json'.length))
      .sort()
      .map((runId) => {
        try {
          return { runId, checkpoint: this.load(runId) };
        } catch (error) {
          return { runId, error: (error as Error).message };
        }
      });
  }

  remove(runId: string): void {
    for (const suffix of ['', '.prev']) rmSync(`${this.pathOf(runId)}${suffix}`, { force: true });
  }

  /** Whether a live process holds the run's lock. */
  isLocked(runId: string, staleSeconds = DEFAULT_STALE_SECONDS): boolean {
    return holderOf(this.lockPathOf(runId), staleSeconds) === 'live';
  }

  /**
   * Takes the run's lock (a directory: creating one is atomic), or says that another process holds
   * it. The holder refreshes it while it lives; a lock whose holder on this machine is gone, or that
   * went unrefreshed for `staleSeconds` (a holder elsewhere, killed), is taken over.
   */
  lock(runId: string, staleSeconds = DEFAULT_STALE_SECONDS): () => void {
    mkdirSync(this.runsDir, { recursive: true, mode: 0o700 });
    const path = this.lockPathOf(runId);
    if (!tryMkdir(path)) {
      const previous = holderOf(path, staleSeconds);
      if (previous === 'live' || !takeOver(path, previous) || !tryMkdir(path)) {
        throw new CheckpointError(`run '${runId}' is being driven by another ami2docker process; wait for it to finish, or stop it first`);
      }
    }
    writeAtomically(join(path, 'owner'), JSON.stringify(ownLock()));
    const refresh = setInterval(() => {
      try {
        const now = new Date();
        utimesSync(path, now, now);
      } catch {
        // Removed under us: release() below copes.
      }
    }, (staleSeconds * 1000) / 3);
    refresh.unref();
    let released = false;
    return () => {
      if (released) return;
      released = true;
      clearInterval(refresh);
      // Only our own lock: one taken over after we stalled belongs to its new holder.
      if (sameOwner(readOwner(path), ownLock())) rmSync(path, { recursive: true, force: true });
    };
  }

  private lockPathOf(runId: string): string {
    return `${this.pathOf(runId)}.lock`;
  }
}

const DEFAULT_STALE_SECONDS = 10;

interface LockOwner { host: string; pid: number }

const ownLock = (): LockOwner => ({ host: hostname(), pid: process.pid });
const sameOwner = (a: LockOwner | undefined, b: LockOwner) => a?.host === b.host && a.pid === b.pid;

function tryMkdir(path: string): boolean {
  try {
    mkdirSync(path, { mode: 0o700 });
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  }
}

function readOwner(lockPath: string): LockOwner | undefined {
  try {
    return JSON.parse(readFileSync(join(lockPath, 'owner'), 'utf8')) as LockOwner;
  } catch {
    return undefined;
  }
}

/** Whether a process of this machine with `pid` is alive (EPERM: alive, but someone else's). */
export function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** `free`, `live`, or the owner of a stale lock (`unknown` when it died before naming itself). */
function holderOf(lockPath: string, staleSeconds: number): 'free' | 'live' | LockOwner | 'unknown' {
  let modified: number;
  try {
    modified = statSync(lockPath).mtimeMs;
  } catch {
    return 'free';
  }
  const owner = readOwner(lockPath);
  const fresh = Date.now() - modified < staleSeconds * 1000;
  if (!owner) return fresh ? 'live' : 'unknown';
  const goneFromThisMachine = owner.host === hostname() && !processExists(owner.pid);
  return fresh && !goneFromThisMachine ? 'live' : owner;
}

/**
 * Removes a stale lock, unless another process took it over in the meantime: the lock is moved
 * aside first (only one mover wins) and put back when it turns out to be someone else's.
 */
function takeOver(lockPath: string, stale: 'free' | LockOwner | 'unknown'): boolean {
  if (stale === 'free') return true;
  const aside = `${lockPath}.stale-${process.pid}`;
  try {
    renameSync(lockPath, aside);
  } catch {
    return existsSync(lockPath) ? false : true;
  }
  const moved = readOwner(aside);
  if (stale !== 'unknown' && !sameOwner(moved, stale)) {
    try {
      renameSync(aside, lockPath);
    } catch {
      rmSync(aside, { recursive: true, force: true });
    }
    return false;
  }
  rmSync(aside, { recursive: true, force: true });
  return true;
}

/** Adds a transition to the history when the state changed; bounded so a long run stays small. */
export function appendHistory(history: HistoryEntry[], state: string, at: string): HistoryEntry[] {
  if (history.at(-1)?.state === state) return history;
  const next = [...history, { at, state }];
  return next.length > HISTORY_LIMIT ? next.slice(next.length - HISTORY_LIMIT) : next;
}

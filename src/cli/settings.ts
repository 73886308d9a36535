// Where option defaults come from, lowest first: built-in defaults, the user's settings (conf,
// `ami2docker config`-style JSON in the OS config dir), the project file `.ami2docker.json`
// (or --config FILE), then flags (yargs applies them below the flags). Not loaded for --help.
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { CliError, EXIT } from './exit.js';
import { convertOptions, globalOptions } from './options.js';

const KNOWN = new Set([...Object.keys(convertOptions), ...Object.keys(globalOptions)].filter((key) => key !== 'config'));

function readJson(path: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new CliError(`settings file ${path} is not valid JSON (${(error as Error).message}): fix or remove it`, EXIT.usage);
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new CliError(`settings file ${path} must hold a JSON object of option names to values`, EXIT.usage);
  }
  const settings = parsed as Record<string, unknown>;
  for (const key of Object.keys(settings)) {
    if (!KNOWN.has(key)) throw new CliError(`settings file ${path}: unknown option '${key}' (use the long flag names, e.g. "instance-type")`, EXIT.usage);
  }
  return settings;
}

/**
 * conf's atomic writer (through when-exit) re-raises every SIGINT and SIGTERM it sees, which would
 * turn one Ctrl-C into two; the run handles both signals itself, so those listeners are removed.
 */
async function importConf(): Promise<typeof import('conf').default> {
  const handled = ['SIGINT', 'SIGTERM'] as const;
  const before = new Map(handled.map((signal) => [signal, new Set(process.listeners(signal))]));
  const { default: Conf } = await import('conf');
  for (const signal of handled) {
    for (const listener of process.listeners(signal)) if (!before.get(signal)!.has(listener)) process.off(signal, listener);
  }
  return Conf;
}

export async function loadSettings(configFlag: string | undefined, cwd = process.cwd()): Promise<Record<string, unknown>> {
  const Conf = await importConf();
  const user = new Conf<Record<string, unknown>>({ projectName: 'ami2docker', configName: 'settings' }).store;
  for (const key of Object.keys(user)) if (!KNOWN.has(key)) delete user[key];
  const projectPath = configFlag ? resolve(cwd, configFlag) : resolve(cwd, '.ami2docker.json');
  if (configFlag && !existsSync(projectPath)) throw new CliError(`--config ${configFlag}: no such file`, EXIT.usage);
  const project = existsSync(projectPath) ? readJson(projectPath) : {};
  return { ...user, ...project };
}

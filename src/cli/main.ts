// The command line. Kept light: option tables are data, and a command's implementation (with the AWS
// SDK) is imported only when that command runs, so `--help` starts fast.
import yargs, { type Argv, type CommandModule } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { CliError, EXIT, exitCodeFor, oneLine, type ExitCode } from './exit.js';
import { convertOptions, globalOptions, type CommonArgs, type ConvertArgs } from './options.js';
import { createOutput, type Output } from './output.js';

// The SDK warns about Node versions on its own; a CLI's users should not see that.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const EPILOGUE = `Exit codes: 0 done; 1 conversion failed (temporary resources removed); 2 usage or bad input (nothing created);
3 AWS permission or credentials problem; 4 interrupted, resumable (checkpoint kept); 5 cleanup incomplete (leftovers listed).
Settings: ./.ami2docker.json (or --config FILE) and the user settings file hold defaults for any long option.`;

type Handler<A> = (args: A, output: Output) => Promise<ExitCode>;

/** Runs a command implementation and turns whatever it throws into one line and an exit code. */
function run<A extends CommonArgs>(load: () => Promise<Handler<A>>): (args: unknown) => Promise<void> {
  return async (parsed) => {
    const args = parsed as A;
    const output = createOutput(args);
    try {
      process.exitCode = await (await load())(args, output);
    } catch (error) {
      const code = exitCodeFor(error);
      const message = (error as Error)?.message ?? String(error);
      output.error(oneLine(message), code, args.debug ? (error as Error)?.stack : undefined);
      process.exitCode = code;
    }
  };
}

const convertCommand = (name: string, describe: string): CommandModule => ({
  command: name,
  describe,
  builder: (y: Argv) => y.options(convertOptions).example([
    ['$0 --ami-name my-web-server-2024', 'Convert an AMI you own into <account>.dkr.ecr.<region>.amazonaws.com/my-web-server-2024'],
    ['$0 --ami-id ami-0123456789abcdef0 --tag v1 --change \'CMD ["/usr/sbin/nginx","-g","daemon off;"]\' --pull', 'Tag v1, set the command, pull it locally'],
    ['$0 --ami-name "al2023-ami-2023.*-x86_64" --ami-owner amazon --dry-run', 'Show what would happen; create nothing'],
  ]),
  handler: run<ConvertArgs>(async () => (await import('./convert.js')).convert),
});

const runsModule = () => import('./runs.js');

const resumeCommand: CommandModule = {
  command: 'resume [run-id]',
  describe: 'Continue an interrupted run from its checkpoint (default: the most recent unfinished run)',
  builder: (y) => y.positional('run-id', { type: 'string', describe: 'Run to resume (see `ami2docker list`)' }),
  handler: run(async () => (await runsModule()).resume),
};

const cleanupCommand: CommandModule = {
  command: 'cleanup [run-id]',
  describe: 'Remove what a run created (default: the most recent unfinished run), or orphans found by tag',
  builder: (y) =>
    y
      .positional('run-id', { type: 'string', describe: 'Run to clean up (see `ami2docker list`)' })
      .options({
        all: { type: 'boolean', default: false, describe: 'Also remove the reusable role, profile, repository and bucket the run created (never ones ami2docker did not create)' },
        orphans: { type: 'boolean', default: false, describe: 'Find ami2docker-tagged instances, volumes and security groups in the region whose run is not active here' },
        'older-than': { type: 'string', default: '2h', describe: 'With --orphans: leave alone what was created or active more recently than this' },
        yes: { type: 'boolean', default: false, describe: 'With --orphans: remove without asking (needed when not on a terminal)' },
        'dry-run': { type: 'boolean', default: false, describe: 'With --orphans: only list what would be removed' },
      })
      .example([
        ['$0 cleanup 20261204-194501-3f9a', 'Remove the temporary resources of one run'],
        ['$0 cleanup --orphans --older-than 6h --dry-run', 'List tagged leftovers whose checkpoint is gone'],
      ]),
  handler: run(async () => (await runsModule()).cleanup),
};

const listCommand: CommandModule = {
  command: 'list',
  describe: 'Runs recorded on this machine with their state, age, AMI, image, live resources and last error',
  handler: run(async () => (await runsModule()).list),
};

const statusCommand: CommandModule = {
  command: 'status <run-id>',
  describe: 'One run in detail: resources, phases, error and history',
  builder: (y) => y.positional('run-id', { type: 'string', demandOption: true }),
  handler: run(async () => (await runsModule()).status),
};

export function cli(argv: string[]): Argv {
  return yargs(argv)
    .scriptName('ami2docker')
    .usage('$0 [convert] --ami-name NAME [options]\n\nTurn an Amazon EC2 AMI into a Docker image in ECR, via a temporary helper instance that is always removed.')
    .options(globalOptions)
    .command(convertCommand('$0', 'Convert an AMI into a Docker image (the default command)'))
    .command(convertCommand('convert', 'Convert an AMI into a Docker image'))
    .command(resumeCommand)
    .command(cleanupCommand)
    .command(listCommand)
    .command(statusCommand)
    .strict()
    .help()
    .alias('help', 'h')
    .version()
    .epilogue(EPILOGUE)
    .wrap(Math.min(120, process.stdout.columns || 100))
    .fail((message, error) => {
      // yargs reports usage problems here; errors from handlers are caught in `run` instead.
      if (error && !(error.name === 'YError')) throw error;
      throw new CliError(`${message}. See 'ami2docker --help'`, EXIT.usage);
    });
}

export async function main(argv = hideBin(process.argv)): Promise<void> {
  const wantsHelp = argv.some((arg) => ['--help', '-h', '--version'].includes(arg));
  const parser = cli(argv);
  if (!wantsHelp) {
    const configIndex = argv.indexOf('--config');
    const configFlag = configIndex >= 0 ? argv[configIndex + 1] : argv.find((a) => a.startsWith('--config='))?.slice('--config='.length);
    try {
      const { loadSettings } = await import('./settings.js');
      parser.config(await loadSettings(configFlag));
    } catch (error) {
      fail(error, argv.includes('--json'));
      return;
    }
  }
  try {
    await parser.parseAsync();
  } catch (error) {
    fail(error, argv.includes('--json'));
  }
}

function fail(error: unknown, json: boolean): void {
  const code = exitCodeFor(error);
  createOutput({ json, debug: false }).error(oneLine((error as Error).message), code);
  process.exitCode = code;
}


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

export function cli(argv: string[]): Argv {
  return yargs(argv)
    .scriptName('ami2docker')
    .usage('$0 [convert] --ami-name NAME [options]\n\nTurn an Amazon EC2 AMI into a Docker image in ECR, via a temporary helper instance that is always removed.')
    .options(globalOptions)
    .command(convertCommand('$0', 'Convert an AMI into a Docker image (the default command)'))
    .command(convertCommand('convert', 'Convert an AMI into a Docker image'))
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


// Option definitions as plain data, so `--help` costs no AWS SDK load.
import type { Options } from 'yargs';
import { DEFAULT_MAX_RUNTIME, DEFAULT_SSM_TIMEOUT, type ConvertOptions } from '../machine/plan.js';

/** Options every command takes. */
export const globalOptions = {
  region: { type: 'string', describe: 'AWS region (default: AWS_REGION, then the profile\'s region)' },
  profile: { type: 'string', describe: 'AWS named profile from ~/.aws/config' },
  'state-dir': { type: 'string', describe: 'Where run checkpoints live (default: AMI2DOCKER_STATE_DIR or ~/.local/state/ami2docker)' },
  json: { type: 'boolean', default: false, describe: 'Print NDJSON events on stdout, ending with one result object' },
  debug: { type: 'boolean', default: false, describe: 'Show stack traces and AWS request details on errors' },
  config: { type: 'string', describe: 'Settings file (default: ./.ami2docker.json when present)' },
} satisfies Record<string, Options>;

/** The options of a conversion, the original tool's first. */
export const convertOptions = {
  'ami-name': { type: 'string', describe: 'Name of the AMI to turn into a Docker image (`*` picks the newest match)' },
  'ssm-bucket': { type: 'string', describe: 'S3 bucket for the full SSM command output (created when missing)' },
  'subnet-id': { type: 'string', describe: 'Subnet for the temporary helper instance (default: the default VPC\'s default subnet)' },
  'instance-profile': { type: 'string', describe: 'Existing instance profile for the helper (default: ami2docker creates a least-privilege one)' },
  'instance-type': { type: 'string', describe: 'Helper instance type (default: c7i.large, or c7g.large for arm64 AMIs)' },
  'instance-ami-name': { type: 'string', describe: 'AMI name for the helper (default: latest Amazon Linux 2023 for the AMI\'s architecture)' },
  'ecr-registry': { type: 'string', describe: 'Existing ECR repository (name or URI) to push to (default: one named after the AMI, created when missing)' },
  'ami-id': { type: 'string', describe: 'ID of the AMI to convert, instead of --ami-name' },
  'ami-owner': { type: 'string', array: true, describe: 'Only consider AMIs of these owners (account id, self, amazon, aws-marketplace); repeatable' },
  'instance-ami-id': { type: 'string', describe: 'AMI id for the helper, instead of --instance-ami-name' },
  tag: { type: 'string', array: true, describe: 'Image tag; repeatable (default: latest and the AMI id)' },
  change: { type: 'string', array: true, describe: 'Dockerfile instruction applied to the image, like docker import --change; repeatable' },
  exclude: { type: 'string', array: true, describe: 'Absolute path left out of the image; repeatable' },
  compression: { type: 'string', choices: ['gzip', 'zstd'], default: 'gzip', describe: 'Layer compression; zstd is faster but needs Docker 23+ or containerd 1.5+ to pull' },
  'max-runtime': { type: 'string', default: DEFAULT_MAX_RUNTIME, describe: 'Hard limit: the helper shuts itself down (and is terminated) after this long, e.g. 90m or 2h' },
  'ssm-timeout': { type: 'string', default: DEFAULT_SSM_TIMEOUT, describe: 'How long to wait for the helper\'s SSM agent to come online' },
  'keep-on-failure': { type: 'boolean', default: false, describe: 'On failure, keep the helper and volume for debugging (remove later with `ami2docker cleanup RUN_ID`)' },
  'dry-run': { type: 'boolean', default: false, describe: 'Resolve the AMI, subnet and helper, print the plan, and create nothing' },
  pull: { type: 'boolean', default: false, describe: 'Pull the finished image into the local Docker engine' },
} satisfies Record<string, Options>;

export type CommonArgs = {
  region?: string;
  profile?: string;
  stateDir?: string;
  json: boolean;
  debug: boolean;
  config?: string;
};

/** Parsed conversion flags: the plan's options, with the defaults above filled in. */
export type ConvertArgs = CommonArgs &
  Omit<ConvertOptions, 'region'> & {
    compression: string;
    maxRuntime: string;
    ssmTimeout: string;
    keepOnFailure: boolean;
    dryRun: boolean;
    pull: boolean;
  };

#!/usr/bin/env bash
# `npm run demo`: a real conversion, end to end, on this machine, with no AWS account. Builds the
# CLI if needed, makes a sample Amazon Linux 2023-shaped AMI disk, starts the bundled AWS twin with
# it, runs the unmodified CLI against the twin (through AWS_ENDPOINT_URL) with --pull, and runs the
# resulting image once. Needs root and `scripts/services.sh start`.
#
#   AMI2DOCKER_DEMO_DIR        where the sample disk is cached (default /tmp/ami2docker-demo)
#   AMI2DOCKER_DEMO_TIME_SCALE twin latencies × this (default 0.1: AWS's minutes become seconds)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

demo_dir="${AMI2DOCKER_DEMO_DIR:-/tmp/ami2docker-demo}"
time_scale="${AMI2DOCKER_DEMO_TIME_SCALE:-0.1}"
ami_name=ami2docker-demo-al2023
layout=gpt-xfs-al2023

if [ -t 2 ]; then bold=$'\033[1m' plain=$'\033[0m'; else bold='' plain=''; fi
say() { printf '\n%s==> %s%s\n' "$bold" "$*" "$plain" >&2; }
die() { printf 'demo: %s\n' "$*" >&2; exit 1; }

# ---- preconditions -------------------------------------------------------------------------------
[ "$(id -u)" -eq 0 ] || die "run as root: the AWS twin attaches disk images as loop devices"
[ -d node_modules ] || die "npm dependencies are missing: run scripts/setup.sh first"
eval "$(scripts/services.sh env)"
if ! curl -fsS "http://$AMI2DOCKER_TEST_REGISTRY/v2/" >/dev/null 2>&1 || ! docker version >/dev/null 2>&1; then
  die "the local Docker engine ($DOCKER_HOST) or registry ($AMI2DOCKER_TEST_REGISTRY) is not running: run scripts/services.sh start, then npm run demo again"
fi

# ---- build, when dist/ is missing or older than a source of the CLI or the twin -------------------
cli="$repo/dist/src/cli/bin.js"
twin_server="$repo/dist/test/twin/server.js"
if [ ! -f "$cli" ] || [ ! -f "$twin_server" ] \
  || [ -n "$(find src test/twin -name '*.ts' ! -name '*.test.ts' \( -newer "$cli" -o -newer "$twin_server" \) -print -quit)" ]; then
  say "Building (dist/ is missing or older than the sources)"
  npm run build --silent
fi

# ---- the sample AMI's disk, cached between demos ---------------------------------------------------
mkdir -p "$demo_dir"
disk="$demo_dir/$layout.img"
if [ ! -f "$disk" ] || [ test/fixtures/make-disk.sh -nt "$disk" ]; then
  say "Making the sample AMI disk ($layout, 512 MiB sparse) in $disk"
  rm -f "$disk"
  bash test/fixtures/make-disk.sh "$layout" "$disk.partial" 512M
  mv "$disk.partial" "$disk"
fi

# ---- the AWS twin, stopped on every exit (success, failure, Ctrl-C) -------------------------------
work=$(mktemp -d "$demo_dir/run.XXXXXX")
twin_pid=
stop_twin() {
  local status=$?
  trap - EXIT INT TERM
  if [ -n "$twin_pid" ] && kill -0 "$twin_pid" 2>/dev/null; then
    # SIGTERM: the twin terminates its instances, detaches its loop devices and deletes its volumes.
    kill -TERM "$twin_pid" 2>/dev/null || true
    for _ in $(seq 1 60); do kill -0 "$twin_pid" 2>/dev/null || break; sleep 0.5; done
    kill -KILL "$twin_pid" 2>/dev/null || true
    wait "$twin_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
  exit "$status"
}
trap stop_twin EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

cat >"$work/amis.json" <<JSON
[{"name": "$ami_name", "architecture": "x86_64", "creationDate": "2024-05-01T10:00:00.000Z",
  "description": "ami2docker demo: a small Amazon Linux 2023-shaped root disk", "disk": "$disk"}]
JSON
say "Starting the AWS twin (EC2, SSM, ECR, S3, IAM, STS on loopback; time scale $time_scale)"
# Its own session: a Ctrl-C reaches the CLI (which then removes what it created), not the twin
# it still needs for that.
setsid node "$twin_server" --state-dir "$work/twin" --port 0 --amis "$work/amis.json" \
  --time-scale "$time_scale" --registry "$AMI2DOCKER_TEST_REGISTRY" >"$work/twin.out" 2>"$work/twin.log" &
twin_pid=$!
url=
for _ in $(seq 1 120); do
  url=$(sed -n 's/^AMI2DOCKER_TWIN_READY //p' "$work/twin.out")
  [ -n "$url" ] && break
  kill -0 "$twin_pid" 2>/dev/null || { cat "$work/twin.log" >&2; die "the AWS twin did not start"; }
  sleep 0.25
done
[ -n "$url" ] || die "the AWS twin did not start within 30 s: $(cat "$work/twin.log")"
echo "AWS twin at $url with AMI '$ami_name'" >&2

# ---- the conversion: the real CLI, pointed at the twin by the SDK's standard variables ------------
say "ami2docker --ami-name $ami_name --pull"
# A Ctrl-C now is the CLI's to handle (it removes what it created, then exits); the twin is
# stopped once it has.
interrupted=
trap 'interrupted=1' INT
set +e
env AWS_ENDPOINT_URL="$url" AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true \
  AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE AWS_SECRET_ACCESS_KEY=demo-secret-not-used-by-the-twin \
  AMI2DOCKER_POLL_INTERVAL=0.2 AMI2DOCKER_STATE_DIR="$work/state" DOCKER_CONFIG="$work/docker-config" \
  node "$cli" --ami-name "$ami_name" --region us-east-1 --pull | tee -i "$work/result.txt"
status=${PIPESTATUS[0]}
set -e
trap 'exit 130' INT
if [ -n "$interrupted" ]; then
  echo "demo: interrupted (ami2docker exited $status); stopping the AWS twin" >&2
  exit 130
fi
[ "$status" -eq 0 ] || die "the conversion failed (exit $status); see the message above"

image=$(sed -n 's/^Image  *//p' "$work/result.txt")
[ -n "$image" ] || die "the CLI did not print the image it made"
docker image inspect "$image" >/dev/null || die "$image is not in the local Docker engine after --pull"

say "Running the image once: docker run --rm --network none $image cat /etc/os-release"
docker run --rm --network none "$image" cat /etc/os-release

say "Done. The image is in the local Docker engine; start a shell in it with:"
echo "DOCKER_HOST=$DOCKER_HOST docker run --rm -it $image"

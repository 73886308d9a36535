#!/usr/bin/env bash
# Installs everything the tests, the benchmarks and the bundled AWS twin need on a Debian machine
# (run as root), then the npm dependencies, then builds. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  docker.io docker-registry awscli skopeo      # engine, registry, a real AWS client, fast registry copies
  xfsprogs e2fsprogs dosfstools fdisk util-linux # disk images of every layout real AMIs use
  attr acl libcap2-bin                          # xattrs, ACLs and file capabilities in fixtures
  pigz zstd busybox-static                      # parallel compression; a tiny real root filesystem
  iproute2 procps curl jq ca-certificates
)
if [ "$(id -u)" -eq 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
else
  echo "setup: not root, skipping Debian packages (${packages[*]})" >&2
fi
npm ci --no-audit --no-fund
npm run build

#!/usr/bin/env bash
# Starts (or stops) the local services the tests and the demo use: a Docker engine and a
# registry, both private to this checkout. Prints the variables to export; idempotent.
#   scripts/services.sh start|stop|env
set -euo pipefail
dir="${AMI2DOCKER_SERVICES_DIR:-/tmp/ami2docker-services}"
registry_addr="${AMI2DOCKER_REGISTRY_ADDR:-127.0.0.1:5000}"
sock="$dir/docker.sock"

print_env() {
  echo "export DOCKER_HOST=unix://$sock"
  echo "export AMI2DOCKER_TEST_REGISTRY=$registry_addr"
}

wait_for() { # what, command...
  local what=$1; shift
  for _ in $(seq 1 120); do "$@" >/dev/null 2>&1 && return 0; sleep 0.5; done
  echo "services: $what did not come up; see $dir/*.log" >&2; return 1
}

start() {
  mkdir -p "$dir/docker" "$dir/registry"
  if ! DOCKER_HOST="unix://$sock" docker version >/dev/null 2>&1; then
    dockerd --storage-driver=vfs --iptables=false --ip6tables=false --bridge=none \
      --data-root "$dir/docker" --exec-root "$dir/docker-exec" --pidfile "$dir/dockerd.pid" \
      --host "unix://$sock" >"$dir/dockerd.log" 2>&1 &
    wait_for dockerd env DOCKER_HOST="unix://$sock" docker version
  fi
  if ! curl -fsS "http://$registry_addr/v2/" >/dev/null 2>&1; then
    cat >"$dir/registry.yml" <<YML
version: 0.1
log: { level: warn }
storage:
  filesystem: { rootdirectory: $dir/registry }
  delete: { enabled: true }
http: { addr: $registry_addr }
YML
    docker-registry serve "$dir/registry.yml" >"$dir/registry.log" 2>&1 &
    echo $! >"$dir/registry.pid"
    wait_for registry curl -fsS "http://$registry_addr/v2/"
  fi
  print_env
}

stop() {
  for p in registry dockerd; do
    [ -f "$dir/$p.pid" ] && kill "$(cat "$dir/$p.pid")" 2>/dev/null || true
    rm -f "$dir/$p.pid"
  done
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  env) print_env ;;
  *) echo "usage: $0 start|stop|env" >&2; exit 2 ;;
esac

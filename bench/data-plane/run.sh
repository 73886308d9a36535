#!/usr/bin/env bash
# Data-plane benchmark: time from "volume attached" to "image in the registry", on one disk image,
# for
#   (a) src/effects/remote/convert.sh, gzip (default) and zstd;
#   (b) the original pipeline: tar -c -C /mnt . | docker import - IMG && docker push IMG;
#   (c) a raw read of the tree (same tar options as the script, into a pipe) as the lower bound;
# and prints script/original and script/raw ratios.
#
#   bench/data-plane/run.sh [--repeat N] [--disk FILE]      (root; after scripts/services.sh start)
#
# The disk is a 2 GiB GPT/XFS Amazon Linux 2023 layout holding the busybox fixture root plus bulk
# data copied from this machine (test/fixtures/make-disk.sh --bulk; MAKE_DISK_BULK_DIRS changes
# it). --disk reuses an image built before (building one takes about a minute). Each repetition
# stamps the disk with a fresh id so no registry or engine can reuse a layer from an earlier one.
# All variants read through the page cache once it is warm (the raw read runs first); with N
# repeats the best time of each is reported. Not run by the test suites.
set -euo pipefail
export LC_ALL=C
root=$(cd "$(dirname "$0")/../.." && pwd)
export DOCKER_HOST=${DOCKER_HOST:-unix:///tmp/ami2docker-services/docker.sock}
registry=${AMI2DOCKER_TEST_REGISTRY:-127.0.0.1:5000}

repeat=1 disk=
while [ $# -gt 0 ]; do
  case $1 in
    --repeat) repeat=$2; shift 2 ;;
    --disk) disk=$2; shift 2 ;;
    *) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2 ;;
  esac
done
[ "$(id -u)" -eq 0 ] || { echo "bench: run as root" >&2; exit 2; }
curl -fsS "http://$registry/v2/" >/dev/null || { echo "bench: no registry at $registry (scripts/services.sh start)" >&2; exit 2; }

work=$(mktemp -d /tmp/a2d-bench.XXXXXX)
loop= mnt=$work/mnt images=()
cleanup() {
  set +e
  mountpoint -q "$mnt" && umount "$mnt"
  [ -n "$loop" ] && losetup -d "$loop"
  for i in "${images[@]}"; do docker rmi -f "$i" >/dev/null 2>&1; done
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$mnt" "$work/bin" "$work/tmp"

usec() { echo "${EPOCHREALTIME/./}"; }
secs() { printf '%d.%02d' $(($1 / 1000000)) $(($1 % 1000000 / 10000)); }
ratio() { printf '%d.%02d' $(($1 / $2)) $(($1 * 100 / $2 % 100)); }
min_of() { printf '%s\n' "$@" | sort -n | head -n 1; }
layer_size() { # REPO TAG
  curl -fsS -H 'Accept: application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json' \
    "http://$registry/v2/$1/manifests/$2" | python3 -c 'import json,sys; print(sum(l["size"] for l in json.load(sys.stdin)["layers"]))'
}

# ---- the disk -----------------------------------------------------------------------------------
if [ -z "$disk" ]; then
  disk=$work/disk.img
  echo "bench: building the disk (make-disk.sh --bulk gpt-xfs-al2023, 2G)..." >&2
  "$root/test/fixtures/make-disk.sh" --bulk gpt-xfs-al2023 "$disk" 2G
fi
run_id=$(date +%s)-$$
loop=$(losetup -P -f --show "$disk")
partx -u "$loop" 2>/dev/null || true; partx -a "$loop" 2>/dev/null || true
for _ in $(seq 1 40); do [ -b "${loop}p1" ] && break; sleep 0.25; done
part=${loop}p1

mount -o ro,nouuid "$part" "$mnt"
tree_bytes=$(du -sb --apparent-size "$mnt" | cut -f1)
tree_files=$(find "$mnt" -xdev | wc -l)
umount "$mnt"

# stamp N: a file unique to this repetition, so every variant pushes a layer no one has seen.
stamp() {
  mount -o nouuid "$part" "$mnt"
  echo "$run_id-$1" >"$mnt/etc/bench-run-id"
  umount "$mnt"
}

mount_ro() { mount -o ro,nouuid "$part" "$mnt"; }
TAR_OPTIONS_SCRIPT=(--format=posix --pax-option=delete=atime,delete=ctime --numeric-owner --xattrs --xattrs-include='*'
  --acls --sparse --one-file-system)

# ---- the variants -------------------------------------------------------------------------------
raw_read() {
  mount_ro
  local t=$(usec)
  tar -C "$mnt" "${TAR_OPTIONS_SCRIPT[@]}" -cf - . | cat >/dev/null
  t=$(($(usec) - t))
  umount "$mnt"
  echo "$t"
}

original() { # N: prints "import_usec push_usec layer_bytes"
  local image=$registry/bench-dataplane/original:$run_id-$1 t1 t2 t3 out
  mount_ro
  t1=$(usec)
  tar -c -C "$mnt" . | docker import - "$image" >/dev/null
  t2=$(usec)
  umount "$mnt"
  images+=("$image")
  out=$(docker push "$image" 2>&1)
  t3=$(usec)
  if grep -Eq 'Mounted from|already exists' <<<"$out"; then echo "bench: warning: docker reused a layer (push not measured)" >&2; fi
  docker rmi -f "$image" >/dev/null
  echo "$((t2 - t1)) $((t3 - t2)) $(layer_size bench-dataplane/original "$run_id-$1")"
}

# The conversion script exactly as the helper runs it (see test/remote/harness.ts): export
# prelude, bash FILE </dev/null, the volume under its Nitro name in a private mount namespace. The
# test-only `aws` fails fast: this registry needs no login.
printf '#!/bin/sh\necho "no credentials" >&2\nexit 253\n' >"$work/bin/aws"; chmod +x "$work/bin/aws"
script() { # COMPRESSION N: prints "usec layer_bytes"
  local volume=vol-0bench$(printf '%012x' "$2") repo=bench-dataplane/script-$1 t out
  cat >"$work/command.sh" <<EOF
export A2D_VOLUME_ID='$volume' A2D_DEVICE='/dev/sdf' A2D_REPOSITORY_URI='$registry/$repo' A2D_TAGS='$run_id-$2'
export A2D_PLATFORM='linux/amd64' A2D_REGION='us-east-1' A2D_AMI_ID='ami-0bench' A2D_AMI_NAME='bench'
export A2D_AMI_CREATION_DATE='2024-01-01T00:00:00.000Z' A2D_CHANGES='' A2D_EXCLUDES='' A2D_COMPRESSION='$1'
bash '$root/src/effects/remote/convert.sh' </dev/null
EOF
  t=$(usec)
  out=$(env -i PATH="$work/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" HOME=/root TMPDIR="$work/tmp" \
    unshare -m --propagation private bash -c "mkdir -p /dev/disk/by-id && mount -t tmpfs none /dev/disk/by-id &&
      ln -s '$loop' /dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_${volume//-/} && exec bash '$work/command.sh'") ||
    { echo "bench: the script failed" >&2; exit 1; }
  t=$(($(usec) - t))
  grep -q '^AMI2DOCKER_RESULT ' <<<"$(tail -n 1 <<<"$out")" || { echo "bench: no result line" >&2; exit 1; }
  echo "$t $(layer_size "$repo" "$run_id-$2")"
}

raws=() imports=() pushes=() originals=() gzips=() zstds=()
for n in $(seq 1 "$repeat"); do
  stamp "$n"
  [ "$n" -gt 1 ] || raw_read >/dev/null # warm the page cache
  raws+=("$(raw_read)")
  original "$n" >"$work/out"; read -r imp push original_bytes <"$work/out"
  imports+=("$imp") pushes+=("$push") originals+=("$((imp + push))")
  script gzip "$n" >"$work/out"; read -r t gzip_bytes <"$work/out"; gzips+=("$t")
  script zstd "$n" >"$work/out"; read -r t zstd_bytes <"$work/out"; zstds+=("$t")
  echo "bench: run $n/$repeat: raw $(secs "${raws[-1]}") s, original $(secs "${originals[-1]}") s, script gzip $(secs "${gzips[-1]}") s, zstd $(secs "${zstds[-1]}") s" >&2
done

raw=$(min_of "${raws[@]}") orig=$(min_of "${originals[@]}") gz=$(min_of "${gzips[@]}") zs=$(min_of "${zstds[@]}")
cat <<EOF
Data-plane benchmark ($(nproc) cores, $(uname -m), best of $repeat)
Disk: $(du -h --apparent-size "$disk" | cut -f1) GPT/XFS, tree $((tree_bytes / 1048576)) MiB in $tree_files entries

| variant | time (s) | layer (MiB) | vs original | vs raw read |
|---|---:|---:|---:|---:|
| raw read: tar > pipe (lower bound) | $(secs "$raw") | - | - | 1.00 |
| original: tar \| docker import ($(secs "$(min_of "${imports[@]}")") s) + docker push ($(secs "$(min_of "${pushes[@]}")") s) | $(secs "$orig") | $((original_bytes / 1048576)) | 1.00 | $(ratio "$orig" "$raw") |
| convert.sh, gzip (pigz) | $(secs "$gz") | $((gzip_bytes / 1048576)) | $(ratio "$gz" "$orig") | $(ratio "$gz" "$raw") |
| convert.sh, zstd | $(secs "$zs") | $((zstd_bytes / 1048576)) | $(ratio "$zs" "$orig") | $(ratio "$zs" "$raw") |
EOF

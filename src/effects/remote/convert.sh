#!/usr/bin/env bash
# ami2docker remote conversion: runs as root on the temporary helper instance (sent through SSM
# AWS-RunShellScript) with the AMI's root volume attached, and turns that volume's root filesystem
# into a single-layer image in a registry.
#
# Input (environment; the CLI renders `export NAME='value'` lines before `bash FILE </dev/null`):
#   A2D_VOLUME_ID, A2D_DEVICE           the attached EBS volume and the device name it was attached as
#   A2D_REPOSITORY_URI                  <registry host[:port]>/<repository path>, no tag
#   A2D_TAGS                            space-separated tags (may be empty: push by digest only)
#   A2D_PLATFORM                        linux/amd64 | linux/arm64 (an optional /variant is kept)
#   A2D_REGION, A2D_AMI_ID, A2D_AMI_NAME, A2D_AMI_CREATION_DATE   labels and registry login
#   A2D_CHANGES                         newline-separated Dockerfile instructions, as for
#                                       `docker import --change` (CMD ENTRYPOINT ENV WORKDIR USER
#                                       EXPOSE LABEL VOLUME STOPSIGNAL; JSON or shell form)
#   A2D_EXCLUDES                        newline-separated absolute paths left out of the image
#                                       (shell wildcards allowed; a directory goes with its contents)
#   A2D_COMPRESSION                     gzip (default; every Docker can pull it) | zstd (OCI, faster)
#   A2D_DISK_WAIT_SECONDS               optional, how long to wait for the volume's device (180)
#
# Output (the CLI parses it): `AMI2DOCKER_STEP <step> <text>` progress lines on stdout; on success
# the last stdout line is `AMI2DOCKER_RESULT {"imageUri":...,"digest":...,"tags":[...]}`; on failure
# `AMI2DOCKER_ERROR <step>: <message>` on stderr and a non-zero exit. Temporary mounts, volume
# groups and files are always cleaned up.
#
# How: the root filesystem is mounted read-only and streamed once through
#   GNU tar | tee (sha256 = diff_id) | pigz or zstd | tee (sha256 = blob digest) | curl PATCH
# straight into a registry blob upload (Docker Registry HTTP API v2), then the config blob and one
# manifest per tag are PUT. Nothing is staged on local disk and no Docker engine is needed.
# Registry credentials: `aws ecr get-login-password` (the instance role) sent as HTTP Basic
# `AWS:<password>`; the password lives only in a shell variable and reaches curl through a config
# on a pipe (never argv, never output). A registry that answers without credentials needs none.
set -Eeuo pipefail
umask 077
export LC_ALL=C HOME=${HOME:-/root}
PATH=$PATH:/usr/local/sbin:/usr/sbin:/sbin

# ---- progress, errors, cleanup ------------------------------------------------------------------

STEP=start
T0=${EPOCHREALTIME/./}
tmp=
mounts=()
active_vgs=()
upload_url=
registry_password=

usec() { echo "${EPOCHREALTIME/./}"; }
# seconds_since USEC: elapsed time with one decimal, e.g. "12.3"
seconds_since() { local d=$(($(usec) - $1)); printf '%d.%d' $((d / 1000000)) $((d % 1000000 / 100000)); }
step() { STEP=$1; shift; echo "AMI2DOCKER_STEP $STEP $*"; }
say() { echo "AMI2DOCKER_STEP $STEP $*"; }
fail() {
  echo "AMI2DOCKER_ERROR $STEP: $*" >&2
  [ -n "$tmp" ] && : >"$tmp/reported"
  exit 1
}

failed_command= failed_line=
on_err() { failed_command=$1 failed_line=$2; }
trap 'on_err "$BASH_COMMAND" "$LINENO"' ERR

on_exit() {
  local rc=$? i
  trap - ERR
  set +e
  if [ "$rc" -ne 0 ] && [ ! -e "${tmp:-/nonexistent}/reported" ]; then
    echo "AMI2DOCKER_ERROR $STEP: unexpected failure (exit $rc) at line ${failed_line:-?}: ${failed_command:-?}" >&2
  fi
  # Background readers of the stream pipeline, if a failure left any.
  kill $(jobs -p) 2>/dev/null
  wait 2>/dev/null
  if [ -n "$upload_url" ]; then registry_curl DELETE "$upload_url" >/dev/null 2>&1; fi
  for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do
    umount "${mounts[i]}" 2>/dev/null || umount -l "${mounts[i]}" 2>/dev/null ||
      echo "ami2docker: could not unmount ${mounts[i]}" >&2
  done
  for i in "${active_vgs[@]}"; do lvm_cmd vgchange -an "$i" >/dev/null 2>&1; done
  [ -n "$tmp" ] && rm -rf "$tmp"
  exit "$rc"
}
trap on_exit EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ami2docker.XXXXXX")
: >"$tmp/empty"

# ---- inputs -------------------------------------------------------------------------------------

STEP=input
volume_id=${A2D_VOLUME_ID:-}
device=${A2D_DEVICE:-}
repository_uri=${A2D_REPOSITORY_URI:-}
read -r -a tags <<<"${A2D_TAGS:-}"
compression=${A2D_COMPRESSION:-gzip}
disk_wait_seconds=${A2D_DISK_WAIT_SECONDS:-180}
# Levels measured on an 800 MB distribution tree (bench/data-plane): pigz -3 needs less than half
# the CPU of -6 for a 6% larger layer (-1 saves little more and grows it 10%); zstd -3 is cheaper still.
gzip_level=3 zstd_level=3

[ "$(id -u)" -eq 0 ] || fail "must run as root"
[ -n "$volume_id$device" ] || fail "A2D_VOLUME_ID or A2D_DEVICE is required"
[[ $repository_uri =~ ^([A-Za-z0-9.-]+|\[[0-9A-Fa-f:]+\])(:[0-9]+)?/[a-z0-9]+([._/-][a-z0-9]+)*$ ]] ||
  fail "A2D_REPOSITORY_URI must be <registry host[:port]>/<repository> (lowercase, no tag): '$repository_uri'"
registry_host=${repository_uri%%/*}
repository=${repository_uri#*/}
for t in "${tags[@]}"; do
  [[ $t =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$ ]] || fail "invalid tag '$t'"
done
case $compression in gzip | zstd) ;; *) fail "A2D_COMPRESSION must be gzip or zstd, not '$compression'" ;; esac
[[ $disk_wait_seconds =~ ^[0-9]+$ ]] || fail "A2D_DISK_WAIT_SECONDS must be a number of seconds"

# Docker's rule: plain HTTP only for loopback registries.
registry_scheme=https
case ${registry_host%:*} in localhost | 127.* | "[::1]") registry_scheme=http ;; esac
registry_base=$registry_scheme://$registry_host

# ---- install what the helper lacks --------------------------------------------------------------

step install "checking tools"
# command -> package (Amazon Linux 2023 names)
declare -A package_of=(
  [tar]=tar [curl]=curl-minimal [python3]=python3 [sha256sum]=coreutils [tee]=coreutils
  [blkid]=util-linux [partx]=util-linux [findmnt]=util-linux [mount]=util-linux
  [pigz]=pigz [zstd]=zstd [aws]=awscli-2 [lvm]=lvm2
)
needed=(tar curl python3 sha256sum tee blkid partx findmnt mount aws)
if [ "$compression" = zstd ]; then needed+=(zstd); else needed+=(pigz); fi

# install_packages CMD...: installs the packages of the missing commands; prints what it did.
install_packages() {
  local missing=() packages=() c started
  for c in "$@"; do command -v "$c" >/dev/null || missing+=("$c"); done
  if [ ${#missing[@]} -eq 0 ]; then return 0; fi
  for c in "${missing[@]}"; do packages+=("${package_of[$c]:-$c}"); done
  if ! command -v dnf >/dev/null; then
    say "missing ${missing[*]} and no dnf to install them"
    return 0
  fi
  started=$(usec)
  dnf install -y -q "${packages[@]}" >"$tmp/dnf.log" 2>&1 ||
    say "dnf install ${packages[*]} failed: $(tail -n 3 "$tmp/dnf.log" | tr '\n' ' ')"
  say "installed ${packages[*]} in $(seconds_since "$started") s"
}
install_started=$(usec)
install_packages "${needed[@]}"
for c in tar curl python3 sha256sum tee blkid partx findmnt mount; do
  command -v "$c" >/dev/null || fail "required command '$c' is missing and could not be installed"
done
tar --version 2>/dev/null | head -n 1 | grep -q 'GNU tar' || fail "GNU tar is required"
if [ "$compression" = zstd ]; then
  command -v zstd >/dev/null || fail "zstd is missing and could not be installed"
  compress=(zstd -q -c -T0 "-$zstd_level")
  layer_media_type=application/vnd.oci.image.layer.v1.tar+zstd
  config_media_type=application/vnd.oci.image.config.v1+json
  manifest_media_type=application/vnd.oci.image.manifest.v1+json
else
  # pigz compresses on every core; gzip is the single-threaded fallback. -n: no name or time in
  # the header, so the same tree gives the same blob.
  if command -v pigz >/dev/null; then compress=(pigz -c -n "-$gzip_level"); else compress=(gzip -c -n "-$gzip_level"); fi
  layer_media_type=application/vnd.docker.image.rootfs.diff.tar.gzip
  config_media_type=application/vnd.docker.container.image.v1+json
  manifest_media_type=application/vnd.docker.distribution.manifest.v2+json
fi
say "ready in $(seconds_since "$install_started") s (compressor: ${compress[0]})"

# ---- image config (built first: a bad --change fails before any heavy work) ----------------------

STEP=config
DIFF_ID_PLACEHOLDER=__A2D_DIFF_ID__
build_config() {
  A2D_DIFF_ID_PLACEHOLDER=$DIFF_ID_PLACEHOLDER python3 - <<'PY'
import json, os, re, shlex, sys
from datetime import datetime, timezone

def fail(message):
    print(message, file=sys.stderr)
    sys.exit(3)

env = os.environ.get
platform = env('A2D_PLATFORM', 'linux/amd64').split('/')
if len(platform) not in (2, 3) or not all(platform):
    fail('A2D_PLATFORM must look like linux/amd64 or linux/arm64, not %r' % env('A2D_PLATFORM'))

# The image is dated by its content: the AMI's creation time.
created = env('A2D_AMI_CREATION_DATE', '')
if not re.match(r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$', created):
    created = datetime.now(timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')

config = {}
labels = {
    'ami2docker.ami-id': env('A2D_AMI_ID', ''),
    'ami2docker.ami-name': env('A2D_AMI_NAME', ''),
    'ami2docker.ami-creation-date': env('A2D_AMI_CREATION_DATE', ''),
    'ami2docker.region': env('A2D_REGION', ''),
}
env_list = []

def json_or_none(text):
    if not text.startswith('['):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        return None
    return value

def pairs(instruction, text):
    try:
        words = shlex.split(text, posix=True)
    except ValueError as e:
        fail('%s %s: %s' % (instruction, text, e))
    if not words:
        fail('%s needs arguments' % instruction)
    if '=' not in words[0]:
        if instruction == 'ENV':  # legacy form: ENV KEY the rest is the value
            parts = text.split(None, 1)
            return [(parts[0], parts[1] if len(parts) > 1 else '')]
        fail('%s needs key=value pairs: %s' % (instruction, text))
    result = []
    for word in words:
        if '=' not in word:
            fail('%s needs key=value pairs: %s' % (instruction, text))
        key, value = word.split('=', 1)
        if not key:
            fail('%s has an empty key: %s' % (instruction, text))
        result.append((key, value))
    return result

def set_env(key, value):
    for i, item in enumerate(env_list):
        if item.split('=', 1)[0] == key:
            env_list[i] = key + '=' + value
            return
    env_list.append(key + '=' + value)

def ports(text):
    result = {}
    for word in text.split():
        m = re.match(r'^(\d+)(?:-(\d+))?(?:/(tcp|udp|sctp))?$', word, re.I)
        if not m:
            fail('EXPOSE: invalid port %r' % word)
        first, last = int(m.group(1)), int(m.group(2) or m.group(1))
        if not (0 < first <= last <= 65535):
            fail('EXPOSE: invalid port range %r' % word)
        for port in range(first, last + 1):
            result['%d/%s' % (port, (m.group(3) or 'tcp').lower())] = {}
    return result

for line in env('A2D_CHANGES', '').splitlines():
    line = line.strip()
    if not line or line.startswith('#'):
        continue
    m = re.match(r'^([A-Za-z]+)(?:\s+(.*))?$', line, re.S)
    if not m:
        fail('not a Dockerfile instruction: %s' % line)
    instruction, rest = m.group(1).upper(), (m.group(2) or '').strip()
    if not rest:
        fail('%s needs an argument' % instruction)
    as_json = json_or_none(rest)
    if instruction in ('CMD', 'ENTRYPOINT'):
        config['Cmd' if instruction == 'CMD' else 'Entrypoint'] = as_json if as_json is not None else ['/bin/sh', '-c', rest]
    elif instruction == 'ENV':
        for key, value in pairs('ENV', rest):
            set_env(key, value)
    elif instruction == 'LABEL':
        for key, value in pairs('LABEL', rest):
            labels[key] = value
    elif instruction == 'WORKDIR':
        config['WorkingDir'] = os.path.normpath(os.path.join(config.get('WorkingDir', '/'), rest))
    elif instruction == 'USER':
        config['User'] = rest
    elif instruction == 'EXPOSE':
        config.setdefault('ExposedPorts', {}).update(ports(rest))
    elif instruction == 'VOLUME':
        for path in (as_json if as_json is not None else rest.split()):
            config.setdefault('Volumes', {})[path] = {}
    elif instruction == 'STOPSIGNAL':
        config['StopSignal'] = rest
    else:
        fail('unsupported instruction %s (use CMD, ENTRYPOINT, ENV, WORKDIR, USER, EXPOSE, LABEL, VOLUME or STOPSIGNAL)' % instruction)

if 'Cmd' not in config and 'Entrypoint' not in config:
    config['Cmd'] = ['/bin/sh']
if env_list:
    config['Env'] = env_list
config['Labels'] = labels

image = {
    'architecture': platform[1],
    'os': platform[0],
    'created': created,
    'config': config,
    'rootfs': {'type': 'layers', 'diff_ids': [env('A2D_DIFF_ID_PLACEHOLDER')]},
    'history': [{
        'created': created,
        'created_by': 'ami2docker: root filesystem of %s (%s)' % (env('A2D_AMI_ID', '?'), env('A2D_AMI_NAME', '?')),
    }],
}
if len(platform) == 3:
    image['variant'] = platform[2]
sys.stdout.write(json.dumps(image, separators=(',', ':'), sort_keys=True))
PY
}
config_template=$(build_config 2>"$tmp/config.err") || fail "$(head -c 500 "$tmp/config.err")"

# ---- find the attached disk ---------------------------------------------------------------------

step find-disk "waiting for ${volume_id:-$device}"
# Nitro exposes EBS volumes as NVMe devices named by volume id; Xen ones as the requested name or
# its /dev/xvdX twin. Attachment is reported before the node appears, hence the wait.
disk_candidates() {
  if [ -n "$volume_id" ]; then echo "/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_${volume_id//-/}"; fi
  if [ -n "$device" ]; then
    echo "$device"
    case $device in /dev/sd*) echo "/dev/xvd${device#/dev/sd}" ;; /dev/xvd*) echo "/dev/sd${device#/dev/xvd}" ;; esac
  fi
}
find_disk() {
  local deadline=$(($(usec) + disk_wait_seconds * 1000000)) candidate
  while :; do
    while IFS= read -r candidate; do
      if [ -b "$candidate" ]; then readlink -f "$candidate"; return 0; fi
    done < <(disk_candidates)
    [ "$(usec)" -lt "$deadline" ] || return 1
    sleep 0.5
  done
}
disk_started=$(usec)
disk=$(find_disk) ||
  fail "no block device for ${volume_id:-the volume} after ${disk_wait_seconds} s (looked for $(disk_candidates | tr '\n' ' '))"
disk_name=${disk##*/}

# Partition nodes may lag behind the disk node; ask the kernel to (re)read the partition table.
partx -u "$disk" >/dev/null 2>&1 || true
partx -a "$disk" >/dev/null 2>&1 || true
command -v udevadm >/dev/null && udevadm settle --timeout=10 >/dev/null 2>&1 || true

# partitions: /dev nodes of the disk's partitions in partition-number order.
partitions() {
  local p
  for p in /sys/class/block/"$disk_name"/"$disk_name"*; do
    [ -f "$p/partition" ] && echo "$(cat "$p/partition") /dev/${p##*/}"
  done | sort -n | cut -d' ' -f2-
}
mapfile -t parts < <(partitions)
for p in "${parts[@]}"; do
  for _ in $(seq 1 20); do [ -b "$p" ] && break; sleep 0.25; done
  [ -b "$p" ] || fail "partition node $p did not appear"
done
# Never read a disk the helper itself uses.
for p in "$disk" "${parts[@]}"; do
  in_use=$(findmnt -rn -o TARGET -S "$p" 2>/dev/null | head -n 1) || true
  [ -z "$in_use" ] || fail "$p is mounted at $in_use on this instance: refusing to use it"
done
say "$disk (${#parts[@]} partitions) after $(seconds_since "$disk_started") s"

# ---- find the root filesystem -------------------------------------------------------------------

step find-root "probing $disk"
probed=()

# blkid_field DEV FIELD: one value from a low-level probe (not the cache, which may be stale).
blkid_field() { blkid -p -o export "$1" 2>/dev/null | sed -n "s/^$2=//p" | head -n 1; }

lvm_cmd() {
  # --devices limits LVM to this disk's PVs, so neither the helper's devices file nor its own
  # volume groups get in the way (LVM 2.03.12+). Older LVM rejects the option: retry without.
  local cmd=$1; shift
  if [ -n "${lvm_devices:-}" ] && "$cmd" --devices "$lvm_devices" "$@" 2>/dev/null; then return 0; fi
  "$cmd" "$@"
}

# mount_ro DEV FSTYPE DIR: read-only. XFS: nouuid (the helper may have been made from the same
# image); a dirty log is replayed (the volume is a throwaway copy of the snapshot), and only if
# that fails is it mounted without recovery. ext3/4: noload (no journal replay), else plain ro.
mount_ro() {
  local dev=$1 type=$2 dir=$3 options fallback
  case $type in
    xfs) options=ro,nouuid fallback=ro,nouuid,norecovery ;;
    ext3 | ext4) options=ro,noload fallback=ro ;;
    *) options=ro fallback= ;;
  esac
  mkdir -p "$dir"
  if mount -t "$type" -o "$options" "$dev" "$dir" 2>"$tmp/mount.err"; then
    mounts+=("$dir"); mount_options=$options; return 0
  fi
  if [ -n "$fallback" ] && mount -t "$type" -o "$fallback" "$dev" "$dir" 2>>"$tmp/mount.err"; then
    mounts+=("$dir"); mount_options=$fallback; return 0
  fi
  return 1
}

unmount_last() {
  umount "${mounts[-1]}"
  unset 'mounts[-1]'
}

# has_os_release DIR: (a relative or absolute symlink counts: it would resolve inside the image)
has_os_release() { [ -e "$1/etc/os-release" ] || [ -L "$1/etc/os-release" ] || [ -e "$1/usr/lib/os-release" ]; }

# os_name DIR: PRETTY_NAME of the tree, reading os-release the way the image will see it.
os_name() {
  local root=$1 file target name
  for file in etc/os-release usr/lib/os-release; do
    target=$file
    if [ -L "$root/$target" ]; then
      target=$(readlink "$root/$target")
      case $target in /*) target=${target#/} ;; *) target=$(dirname "$file")/$target ;; esac
    fi
    if [ -f "$root/$target" ]; then
      name=$(sed -n 's/^PRETTY_NAME=//p' "$root/$target" | head -n 1 | tr -d '"'"'" | tr -cd '[:print:]')
      echo "${name:-unnamed}"; return 0
    fi
  done
  echo unnamed
}

# probe DEV: if DEV holds a Linux root, leaves it mounted and sets root_dev/root_dir/root_type.
probe() {
  local dev=$1 type pttype dir sub
  type=$(blkid_field "$dev" TYPE)
  pttype=$(blkid_field "$dev" PTTYPE)
  if [ -z "$type" ]; then
    [ -n "$pttype" ] || probed+=("${dev##*/}: no filesystem")
    return 1
  fi
  case $type in
    xfs | ext2 | ext3 | ext4 | btrfs) ;;
    LVM2_member) probe_lvm "$dev"; return ;;
    *) probed+=("${dev##*/}: $type"); return 1 ;;
  esac
  dir=$tmp/mnt/${#mounts[@]}
  if ! mount_ro "$dev" "$type" "$dir"; then
    probed+=("${dev##*/}: $type, mount failed ($(tail -n 1 "$tmp/mount.err"))")
    return 1
  fi
  # Btrfs distributions keep the root in a subvolume (Fedora: root, openSUSE/Ubuntu: @).
  for sub in "" root @; do
    if has_os_release "$dir${sub:+/$sub}"; then
      root_dev=$dev root_dir=$dir${sub:+/$sub} root_type=$type
      return 0
    fi
    [ "$type" = btrfs ] || break
  done
  probed+=("${dev##*/}: $type without etc/os-release")
  unmount_last
  return 1
}

# probe_lvm PV: activates the PV's volume group and probes its logical volumes (root first).
# NOT TESTED here (no device-mapper on the test machines); written for RHEL-style AMIs.
probe_lvm() {
  local pv=$1 vg lv others
  if [ ! -e /dev/mapper/control ]; then probed+=("${pv##*/}: LVM, but no device-mapper"); return 1; fi
  install_packages lvm
  command -v lvm >/dev/null || { probed+=("${pv##*/}: LVM, but no lvm2 tools"); return 1; }
  lvm_devices=$(printf '%s,' "${parts[@]}" "$disk"); lvm_devices=${lvm_devices%,}
  vg=$(lvm_cmd pvs --noheadings -o vg_name "$pv" 2>/dev/null | tr -d ' ')
  [ -n "$vg" ] || { probed+=("${pv##*/}: LVM PV without a volume group"); return 1; }
  # A PV of a VG with the same name elsewhere on the helper (an instance of the same family, or
  # the same image: then even the UUIDs are duplicates) would clash: give this throwaway copy of
  # the snapshot a new VG name and new UUIDs.
  others=$(pvs --noheadings -o pv_name,vg_name 2>/dev/null | awk -v n="$vg" -v mine=",$lvm_devices," \
    '$2 == n && index(mine, "," $1 ",") == 0 { print $1 }')
  if [ -n "$others" ]; then
    lvm_cmd vgimportclone --basevgname "a2d_$vg" "$pv" >/dev/null 2>"$tmp/lvm.err" ||
      { probed+=("${pv##*/}: LVM VG $vg clashes with the helper's and vgimportclone failed ($(tail -n 1 "$tmp/lvm.err"))"); return 1; }
    vg=$(lvm_cmd pvs --noheadings -o vg_name "$pv" 2>/dev/null | tr -d ' ')
  fi
  case " ${active_vgs[*]} " in *" $vg "*) return 1 ;; esac # another PV of a VG already probed
  lvm_cmd vgchange -ay "$vg" >/dev/null 2>"$tmp/lvm.err" ||
    { probed+=("${pv##*/}: LVM VG $vg did not activate ($(tail -n 1 "$tmp/lvm.err"))"); return 1; }
  active_vgs+=("$vg")
  command -v udevadm >/dev/null && udevadm settle --timeout=10 >/dev/null 2>&1 || true
  # /dev/mapper paths exist without udev; an LV named root is tried first.
  while IFS= read -r lv; do
    [ -b "$lv" ] && probe "$lv" && return 0
  done < <(lvm_cmd lvs --noheadings -o lv_name,lv_dm_path "$vg" 2>/dev/null |
    awk '{ print ($1 == "root" ? 0 : 1), $2 }' | sort | cut -d' ' -f2-)
  return 1
}

root_dev= root_dir= root_type= mount_options=
for candidate in "$disk" "${parts[@]}"; do
  if probe "$candidate"; then break; fi
done
[ -n "$root_dev" ] || fail "no Linux root filesystem (etc/os-release) on $disk: $(IFS=';'; echo "${probed[*]:-nothing found}")"
say "$root_dev $root_type \"$(os_name "$root_dir")\""
step mount "$root_dev on $root_dir ($mount_options)"

# ---- registry login -----------------------------------------------------------------------------

step login "$registry_base"
# auth_config: a curl config holding the credentials, read by curl from a pipe (-K <(...)); printf
# is a shell builtin, so the password is never in any process's argv.
auth_config() {
  [ -n "$registry_password" ] || return 0
  local escaped=${registry_password//\\/\\\\}
  escaped=${escaped//\"/\\\"}
  printf 'user = "AWS:%s"\n' "$escaped"
}

# registry_curl METHOD URL [curl options...]: headers to $tmp/headers, body to $tmp/body; prints
# the HTTP status (000 when the request did not complete).
registry_curl() {
  local method=(-X "$1") url=$2; shift 2
  [ "${method[1]}" = HEAD ] && method=(--head)
  curl -sS -K <(auth_config) "${method[@]}" --connect-timeout 20 --retry 3 --retry-delay 1 \
    -D "$tmp/headers" -o "$tmp/body" -w '%{http_code}' "$@" "$url" 2>"$tmp/curl.err" || true
}
header() { tr -d '\r' <"$tmp/headers" | sed -n "s/^$1: *//Ip" | tail -n 1; }
response() { printf '%s %s' "$(tail -n 1 "$tmp/curl.err" 2>/dev/null)" "$(head -c 400 "$tmp/body" 2>/dev/null | tr '\n' ' ')"; }
absolute() { case $1 in http://* | https://*) echo "$1" ;; *) echo "$registry_base$1" ;; esac; }
with_digest() { case $1 in *\?*) echo "$1&digest=$2" ;; *) echo "$1?digest=$2" ;; esac; }

login_note=anonymous
if command -v aws >/dev/null; then
  region_args=()
  [ -n "${A2D_REGION:-}" ] && region_args=(--region "$A2D_REGION")
  if registry_password=$(aws ecr get-login-password "${region_args[@]}" 2>"$tmp/aws.err") && [ -n "$registry_password" ]; then
    login_note="instance role credentials"
  else
    registry_password=
    login_note="anonymous (no ECR password: $(tail -n 1 "$tmp/aws.err" | head -c 200))"
  fi
fi
code=$(registry_curl GET "$registry_base/v2/")
case $code in
  200) ;;
  401) fail "the registry requires credentials and rejected ours ($login_note)" ;;
  *) fail "registry $registry_base answered $code: $(response)" ;;
esac
say "ok, $login_note"

# ---- pack and stream the layer ------------------------------------------------------------------

step pack "streaming $root_dir as a ${compress[0]} layer"
# start_upload: opens a blob upload session; sets upload_url.
start_upload() {
  local code
  code=$(registry_curl POST "$registry_base/v2/$repository/blobs/uploads/" -H 'Content-Length: 0')
  [ "$code" = 202 ] || fail "could not start a blob upload ($code): $(response)"
  upload_url=$(absolute "$(header Location)")
}

# finish_upload DIGEST [FILE]: completes the open upload (with FILE as its only data, if given).
finish_upload() {
  local code
  code=$(registry_curl PUT "$(with_digest "$upload_url" "$1")" -H 'Content-Type: application/octet-stream' -T "${2:-$tmp/empty}")
  [ "$code" = 201 ] || fail "blob $1 was not accepted ($code): $(response)"
  upload_url=
}

# push_blob FILE: uploads a small blob unless the registry has it; prints its digest.
push_blob() {
  local digest code
  digest=sha256:$(sha256sum <"$1" | cut -d' ' -f1)
  code=$(registry_curl HEAD "$registry_base/v2/$repository/blobs/$digest")
  if [ "$code" != 200 ]; then start_upload; finish_upload "$digest" "$1"; fi
  echo "$digest"
}

# tar_options: a faithful archive of one filesystem. Numeric owners; every xattr (file
# capabilities, user.*, POSIX ACLs as system.posix_acl_* which Docker restores) except SELinux
# labels, which belong to the host that runs the container, and XFS's own on-disk copy of the ACLs
# (trusted.SGI_ACL_*, a duplicate of system.posix_acl_*); sparse files as sparse (a huge sparse
# /var/log/lastlog stays small); no atime/ctime. Mount points of pseudo filesystems stay as empty
# directories; excludes are anchored at the root.
# (The layer is not bit-for-bit reproducible: GNU tar names sparse-file headers after its PID.)
tar_options() {
  local path
  printf '%s\n' --format=posix --pax-option=delete=atime,delete=ctime --numeric-owner \
    --xattrs --xattrs-include='*' --xattrs-exclude=security.selinux --xattrs-exclude='trusted.SGI_ACL_*' \
    --acls --sparse \
    --one-file-system --totals --anchored --wildcards \
    --exclude='./proc/*' --exclude='./sys/*' --exclude='./dev/*'
  while IFS= read -r path; do
    path=${path#"${path%%[![:space:]]*}"}; path=${path%"${path##*[![:space:]]}"}
    [ -n "$path" ] || continue
    case $path in /*) ;; *) fail "exclude '$path' is not an absolute path" ;; esac
    path=${path%/}
    [ -n "$path" ] || fail "excluding / would leave nothing"
    printf -- '--exclude=.%s\n' "$path"
  done <<<"${A2D_EXCLUDES:-}"
}
mapfile -t tar_args < <(tar_options)
[ -e "$tmp/reported" ] && exit 1

# stream_layer: tar | tee(diff_id) | compress | tee(digest, size) | curl PATCH, each stage's exit status
# kept in a file so the failing stage (not just "a pipe broke") is reported.
stream_layer() {
  mkfifo "$tmp/raw.fifo" "$tmp/layer.fifo" "$tmp/size.fifo"
  sha256sum <"$tmp/raw.fifo" >"$tmp/raw.sha" &
  local raw_hasher=$!
  sha256sum <"$tmp/layer.fifo" >"$tmp/layer.sha" &
  local layer_hasher=$!
  # (curl's own upload count includes the chunked-encoding framing: count the bytes here)
  wc -c <"$tmp/size.fifo" >"$tmp/layer.size" &
  local layer_counter=$!
  { tar -C "$root_dir" "${tar_args[@]}" -cf - . 2>"$tmp/tar.err"; echo $? >"$tmp/tar.rc"; } |
    { tee "$tmp/raw.fifo"; echo $? >"$tmp/tee1.rc"; } |
    { "${compress[@]}" 2>"$tmp/compress.err"; echo $? >"$tmp/compress.rc"; } |
    { tee "$tmp/layer.fifo" "$tmp/size.fifo"; echo $? >"$tmp/tee2.rc"; } |
    { curl -sS -K <(auth_config) -X PATCH -H 'Content-Type: application/octet-stream' -T - \
        -D "$tmp/headers" -o "$tmp/body" -w '%{http_code}' "$upload_url" \
        >"$tmp/patch.out" 2>"$tmp/curl.err"; echo $? >"$tmp/curl.rc"; }
  wait "$raw_hasher" "$layer_hasher" "$layer_counter" || true
}

pack_started=$(usec)
start_upload
stream_layer
tar_rc=$(cat "$tmp/tar.rc") compress_rc=$(cat "$tmp/compress.rc") curl_rc=$(cat "$tmp/curl.rc")
patch_code=$(cat "$tmp/patch.out") layer_size=$(tr -d ' ' <"$tmp/layer.size")
# A stage that died of SIGPIPE (141) is a victim of a later stage; report the first real failure.
case $tar_rc in 0 | 141) ;; *) fail "tar failed ($tar_rc): $(grep -v '^Total bytes' "$tmp/tar.err" | tail -n 3 | tr '\n' ' ')" ;; esac
case $compress_rc in 0 | 141) ;; *) fail "${compress[0]} failed ($compress_rc): $(tail -n 3 "$tmp/compress.err" | tr '\n' ' ')" ;; esac
STEP=push
[ "$curl_rc" = 0 ] && [ "${patch_code:-}" = 202 ] || fail "layer upload failed (curl $curl_rc, HTTP ${patch_code:-none}): $(response)"
[ "$tar_rc$compress_rc" = 00 ] || fail "the layer stream broke (tar $tar_rc, ${compress[0]} $compress_rc)"
STEP=pack
upload_url=$(absolute "$(header Location)")
diff_id=sha256:$(cut -d' ' -f1 "$tmp/raw.sha")
layer_digest=sha256:$(cut -d' ' -f1 "$tmp/layer.sha")
[[ $diff_id =~ ^sha256:[0-9a-f]{64}$ && $layer_digest =~ ^sha256:[0-9a-f]{64}$ ]] || fail "could not hash the layer"
finish_upload "$layer_digest"
# Cross-check the size curl counted against what the registry stored (the manifest carries it).
[ "$(registry_curl HEAD "$registry_base/v2/$repository/blobs/$layer_digest")" = 200 ] ||
  fail "the registry does not have layer $layer_digest after the upload"
stored_size=$(header Content-Length)
[ -z "$stored_size" ] || [ "$stored_size" = "$layer_size" ] ||
  fail "layer size mismatch: sent $layer_size bytes, registry holds $stored_size"
raw_bytes=$(sed -n 's/^Total bytes written: \([0-9]*\).*/\1/p' "$tmp/tar.err" | tail -n 1)
warnings=$(grep -vc '^Total bytes' "$tmp/tar.err" || true)
say "$((${raw_bytes:-0} / 1048576)) MiB tar, $((layer_size / 1048576)) MiB ${compress[0]}, $(seconds_since "$pack_started") s, $warnings tar warnings"
if [ "$warnings" -gt 0 ]; then say "tar: $(grep -v '^Total bytes' "$tmp/tar.err" | head -n 3 | tr '\n' ' ' | head -c 300)"; fi

# ---- config, manifest, tags ---------------------------------------------------------------------

step push "config and manifest for ${tags[*]:-(no tags)}"
printf '%s' "${config_template/$DIFF_ID_PLACEHOLDER/$diff_id}" >"$tmp/config.json"
config_digest=$(push_blob "$tmp/config.json")
config_size=$(wc -c <"$tmp/config.json")
printf '{"schemaVersion":2,"mediaType":"%s","config":{"mediaType":"%s","size":%d,"digest":"%s"},"layers":[{"mediaType":"%s","size":%d,"digest":"%s"}]}' \
  "$manifest_media_type" "$config_media_type" "$config_size" "$config_digest" \
  "$layer_media_type" "$layer_size" "$layer_digest" >"$tmp/manifest.json"
manifest_digest=sha256:$(sha256sum <"$tmp/manifest.json" | cut -d' ' -f1)

# put_manifest REFERENCE: a tag, or the digest itself when there are no tags.
put_manifest() {
  local code pushed
  code=$(registry_curl PUT "$registry_base/v2/$repository/manifests/$1" \
    -H "Content-Type: $manifest_media_type" --data-binary "@$tmp/manifest.json")
  [ "$code" = 201 ] || fail "manifest $1 was not accepted ($code): $(response)"
  pushed=$(header Docker-Content-Digest)
  [ -z "$pushed" ] || [ "$pushed" = "$manifest_digest" ] ||
    fail "registry stored manifest $1 as $pushed, expected $manifest_digest"
}
if [ ${#tags[@]} -eq 0 ]; then put_manifest "$manifest_digest"; fi
for t in "${tags[@]}"; do put_manifest "$t"; done

tags_json=$(printf ',"%s"' "${tags[@]}"); tags_json=${tags_json#,}
step done "$repository_uri@$manifest_digest in $(seconds_since "$T0") s"
echo "AMI2DOCKER_RESULT {\"imageUri\":\"$repository_uri@$manifest_digest\",\"digest\":\"$manifest_digest\",\"tags\":[${tags[0]+$tags_json}]}"

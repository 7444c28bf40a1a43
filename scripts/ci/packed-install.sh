#!/usr/bin/env bash
# Installs JVS the way a user would, from the tarball `npm pack` makes, into a fresh
# prefix, and runs the core loop and a mount with the installed `jvs`. Run by .ci/run
# after the test suite (the system packages are in place by then).
set -euo pipefail
cd "$(dirname "$0")/../.."
work=$(mktemp -d /tmp/jvs-packed.XXXXXX)
mnt="$work/mnt"
cleanup() {
  if mountpoint -q "$mnt" 2>/dev/null; then "$work/prefix/bin/jvs" umount "$mnt" || umount -l "$mnt" || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

echo "== npm pack"
tarball=$(npm pack --silent --pack-destination "$work" | tail -n 1)
echo "$tarball"
echo "== npm install -g from the tarball (prefix $work/prefix)"
JVS_REQUIRE_NATIVE=1 npm install -g --no-audit --no-fund --prefix "$work/prefix" "$work/$tarball"
jvs="$work/prefix/bin/jvs"
"$jvs" --version

echo "== core loop with the installed jvs"
cd "$work"
"$jvs" init packed
cd packed/main
printf 'one\n' > a.txt
mkdir -p d && printf 'deep\n' > d/b.txt
"$jvs" snapshot "first" --tag v1
printf 'two\n' > a.txt
"$jvs" snapshot "second"
"$jvs" restore v1
test "$(cat a.txt)" = one
"$jvs" restore HEAD
test "$(cat a.txt)" = two
"$jvs" verify --all

echo "== mount with the installed jvs"
mkdir "$mnt"
"$jvs" mount --daemon "$mnt"
test "$(cat "$mnt/current/a.txt")" = two
test "$(cat "$mnt/.jvs/snapshots/v1/a.txt")" = one
printf 'three\n' > "$mnt/current/a.txt"
echo "through the mount" > "$mnt/.jvs/ctl/snapshot"
"$jvs" history --limit 1 | grep -q "through the mount"
"$jvs" umount "$mnt"
echo "packed install: OK"

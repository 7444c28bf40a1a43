#!/usr/bin/env bash
# Build a Unity player from a JVS worktree; after a good build, snapshot the exact
# project state that built, tagged build-<target>. A failed build makes no snapshot.
#
# usage: unity-build.sh <target> [output-dir]
#   target: Linux64, Win64 or OSX (built with Unity's -build<...>Player options), or
#           any Unity build target name when UNITY_METHOD names your build method.
#   Run it from any folder inside the worktree that holds the Unity project
#   (Assets/ and ProjectSettings/ at the worktree root, as `jvs init --template unity`
#   sets up). The player goes to output-dir (default: Builds/<target>/ in the project,
#   ignored by the unity template), the editor log to Logs/build-<target>-<time>.log.
#
# environment:
#   UNITY         the Unity editor binary (default: the Unity Hub install matching
#                 ProjectSettings/ProjectVersion.txt under ~/Unity/Hub/Editor/)
#   UNITY_METHOD  a static C# method that builds (e.g. BuildScript.PerformBuild); it is
#                 run with -executeMethod instead of the -build<...>Player options.
set -euo pipefail

die() { echo "unity-build: $*" >&2; exit 2; }

target=${1:-}
[ -n "$target" ] || die "usage: unity-build.sh <Linux64|Win64|OSX|target> [output-dir]"
command -v jvs > /dev/null || die "jvs is not on PATH"

project=$(jvs worktree path)
[ -f "$project/ProjectSettings/ProjectVersion.txt" ] || die "$project is not a Unity project (no ProjectSettings/ProjectVersion.txt)"
out=${2:-$project/Builds/$target}
stamp=$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$project/Logs" "$out"
log="$project/Logs/build-$target-$stamp.log"

unity=${UNITY:-}
if [ -z "$unity" ]; then
  version=$(sed -n 's/^m_EditorVersion: *//p' "$project/ProjectSettings/ProjectVersion.txt")
  unity="$HOME/Unity/Hub/Editor/$version/Editor/Unity"
fi
[ -x "$unity" ] || die "no Unity editor at $unity (set UNITY to the editor binary)"

# The state that builds: a detached worktree shows an older snapshot, which can be
# built but not snapshotted again (jvs refuses snapshots there).
status=$(jvs status --json)
field() { node -e 'const d = JSON.parse(require("fs").readFileSync(0, "utf8")); console.log(d[process.argv[1]] ?? "")' "$1" <<< "$status"; }
detached=$(field detached)
head=$(field head_snapshot_id)

args=(-batchmode -quit -nographics -projectPath "$project" -logFile "$log")
if [ -n "${UNITY_METHOD:-}" ]; then
  args+=(-buildTarget "$target" -executeMethod "$UNITY_METHOD")
else
  case "$target" in
    Linux64) args+=(-buildLinux64Player "$out/game.x86_64") ;;
    Win64) args+=(-buildWindows64Player "$out/game.exe") ;;
    OSX) args+=(-buildOSXUniversalPlayer "$out/game.app") ;;
    *) die "target $target needs UNITY_METHOD (a build method run with -executeMethod)" ;;
  esac
fi

echo "building $target from $project (log: $log)"
if "$unity" "${args[@]}"; then
  if [ "$detached" = "true" ]; then
    echo "build OK: $out (built from snapshot $head; the worktree is detached, so no new snapshot)"
  else
    jvs snapshot "build $target OK $stamp" --tag "build-$target"
    echo "build OK: $out"
  fi
else
  code=$?
  echo "build FAILED (exit $code): see $log; no snapshot taken" >&2
  exit "$code"
fi

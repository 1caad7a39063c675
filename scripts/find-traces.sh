#!/usr/bin/env bash
# Prints the directory of the shared traces (see ../shared/traces in the team guide), or
# nothing when none is found (tests that need a trace then fail naming the missing file).
#
# Order: $FLEXUS_TRACES_DIR; ../shared/traces next to this checkout; the same next to the
# checkout this one was cloned from (a local `git clone . /tmp/x` of a checkout that sits
# beside shared/), following local origins a few levels.
set -euo pipefail
if [ -n "${FLEXUS_TRACES_DIR:-}" ]; then
  echo "$FLEXUS_TRACES_DIR"
  exit 0
fi
dir=$(cd "$(dirname "$0")/.." && pwd)
for _ in 1 2 3 4; do
  if [ -d "$dir/../shared/traces" ]; then
    (cd "$dir/../shared/traces" && pwd)
    exit 0
  fi
  origin=$(git -C "$dir" config --get remote.origin.url 2>/dev/null || true)
  origin=${origin#file://}
  [ -n "$origin" ] && [ -d "$origin" ] || exit 0
  dir=$(cd "$origin" && pwd)
done

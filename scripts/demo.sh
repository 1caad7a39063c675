#!/usr/bin/env bash
# The main job (`make demo`, after `make tools build`): emulator + agent on loopback,
# terraform apply of examples/quickstart, a trace replay that scales the pool out and back
# in (live table, chart in .demo/demo.svg), a clean terraform plan, destroy, cleanup.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.tools/bin:$PATH"
export CHECKPOINT_DISABLE=1
if [ ! -x .tools/bin/terraform ]; then
  scripts/install-tools.sh
fi
cargo build -q --workspace --bins
exec cargo run -q -p flexus-e2e --example demo

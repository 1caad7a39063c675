#!/usr/bin/env bash
# `make bench`: every benchmark of docs/benchmarks.md, in release mode, one after the other.
# Each step prints its own table; the simulator step rewrites its section of
# docs/benchmarks.md and the charts under docs/benchmarks/. Set BENCH_ONLY to a
# space-separated subset of: policy tfplugin emulator sim agent provider operator.
set -euo pipefail
cd "$(dirname "$0")/.."
only="${BENCH_ONLY:-policy tfplugin emulator sim agent provider operator}"
want() { [[ " $only " == *" $1 "* ]]; }

if want policy; then
  echo "== decision engine: decide() on a five-metric policy with 100 history points" >&2
  cargo bench -p flexus-policy --bench decide
fi
if want tfplugin; then
  echo "== protocol layer: start-to-handshake, plan over 500 resources vs null_resource" >&2
  cargo bench -p tfplugin --bench handshake
fi
if want emulator; then
  echo "== emulator: signed list calls/s and client round-trip p99 (8 clients, 8 s, 25 servers/page)" >&2
  cargo run --release -q -p flexus-emulator --example bench_list -- 8 8 25
  echo "== cloud client: a modest tenant's wait beside a greedy one, fair shares vs one queue (20 s, 40 callers, 50 reads/s)" >&2
  cargo run --release -q -p flexus-emulator --example bench_fair_share -- 20 40 50
fi
if want sim; then
  echo "== simulator: scorecards on every trace, replay speed, forecast accuracy" >&2
  scripts/bench-sim.sh
fi
if want agent; then
  echo "== agent: pools reconciled per 15 s against the emulator (1000 pools, 60 s)" >&2
  cargo bench -p flexus-agent --bench pools -- "${AGENT_POOLS:-1000}" 60
fi
if want operator; then
  echo "== operator: cost report over 10,000 pools; dashboard with 1,000 pools in Chromium; pass latency with the model idle vs hanging, and while tune jobs search" >&2
  cargo bench -p flexus-agent --bench operator -- cost 10000
  cargo bench -p flexus-agent --bench operator -- dashboard 1000
  cargo bench -p flexus-agent --bench operator -- advisor 100 10
  cargo bench -p flexus-agent --bench operator -- tune 100 5
fi
if want provider; then
  echo "== provider: plan over 500 policies vs 500 null_resource; handshake" >&2
  scripts/bench-provider.sh
fi

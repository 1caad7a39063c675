#!/usr/bin/env bash
# The main job. Until the agent and the provider exist, this runs the decision
# engine over an example policy and a real trace and prints its decisions.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "demo: the agent/provider pipeline is not built yet; nothing to run." >&2
exit 1

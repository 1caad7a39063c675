#!/usr/bin/env bash
# Provider benchmarks, side by side in one run (the lead wires this into `make bench`):
#  1. `terraform plan -refresh=false` over 500 flexus_autoscaling_policy resources against
#     500 null_resource (hashicorp/null 2.1.2, the Go SDK), same Terraform, same machine,
#     runs interleaved; median of $RUNS runs each.
#  2. provider process start -> go-plugin handshake line on stdout (median of 50 starts).
# Prints a Markdown table (copy it into docs/benchmarks.md).
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
RUNS="${RUNS:-5}"
N="${N:-500}"
TF="${TERRAFORM:-$root/.tools/bin/terraform}"
export CHECKPOINT_DISABLE=1 TF_IN_AUTOMATION=1 TF_INPUT=0
scripts/install-tools.sh >/dev/null 2>&1 || scripts/install-tools.sh
cargo build -q --release -p terraform-provider-flexus
target="${CARGO_TARGET_DIR:-$root/target}"
bin="$target/release/terraform-provider-flexus"
nullmirror="$root/.tools/mirror"
[ -d "$nullmirror/registry.terraform.io/hashicorp/null" ] || { echo "bench: hashicorp/null missing from $nullmirror (run make tools)" >&2; exit 1; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
plat="linux_amd64"
mkdir -p "$work/mirror/registry.terraform.io/flexus/flexus/0.1.0/$plat"
cp "$bin" "$work/mirror/registry.terraform.io/flexus/flexus/0.1.0/$plat/terraform-provider-flexus_v0.1.0"
cat > "$work/terraformrc" <<RC
provider_installation {
  filesystem_mirror {
    path    = "$work/mirror"
    include = ["registry.terraform.io/flexus/*"]
  }
  filesystem_mirror {
    path    = "$nullmirror"
    include = ["registry.terraform.io/hashicorp/*"]
  }
  direct {
    exclude = ["registry.terraform.io/flexus/*", "registry.terraform.io/hashicorp/*"]
  }
}
RC
export TF_CLI_CONFIG_FILE="$work/terraformrc"

mkdir -p "$work/flexus" "$work/null"
cat > "$work/flexus/main.tf" <<TF
terraform {
  required_providers {
    flexus = {
      source  = "flexus/flexus"
      version = "0.1.0"
    }
  }
}
provider "flexus" {
  endpoint  = "http://127.0.0.1:9"
  namespace = "bench"
}
resource "flexus_autoscaling_policy" "p" {
  count    = $N
  name     = "policy-\${count.index}"
  pool     = "pool-\${count.index}"
  strategy = "target_tracking"
  bounds {
    min = 1
    max = 20
  }
  metric {
    name   = "cpu"
    kind   = "cpu"
    target = 60
    source {
      type        = "cloud_eye"
      metric_name = "cpu_util"
    }
  }
  scale_in {
    stabilisation_window = "5m"
    policy {
      type   = "percent"
      value  = 25
      period = "1m"
    }
  }
}
TF
cat > "$work/null/main.tf" <<TF
terraform {
  required_providers {
    null = {
      source  = "hashicorp/null"
      version = "2.1.2"
    }
  }
}
resource "null_resource" "r" {
  count = $N
  triggers = {
    name = "policy-\${count.index}"
    pool = "pool-\${count.index}"
  }
}
TF
for d in flexus null; do
  (cd "$work/$d" && "$TF" init -no-color >/dev/null) || { echo "bench: terraform init failed in $d" >&2; exit 1; }
done

now() { date +%s%N; }
declare -a tf_times null_times
for i in $(seq 1 "$RUNS"); do
  for d in flexus null; do
    t0=$(now)
    (cd "$work/$d" && "$TF" plan -refresh=false -no-color -input=false >/dev/null) || { echo "bench: plan failed in $d" >&2; exit 1; }
    t1=$(now)
    ms=$(( (t1 - t0) / 1000000 ))
    if [ "$d" = flexus ]; then tf_times+=("$ms"); else null_times+=("$ms"); fi
  done
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
mf=$(median "${tf_times[@]}")
mn=$(median "${null_times[@]}")

# Handshake: time from spawn to the first stdout line (the go-plugin handshake).
py="$root/.tools/venv/bin/python"
[ -x "$py" ] || py=python3
hs=$("$py" - "$bin" <<'PY'
import os, subprocess, sys, time, statistics
binary = sys.argv[1]
env = dict(os.environ, TF_PLUGIN_MAGIC_COOKIE="d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2",
           PLUGIN_PROTOCOL_VERSIONS="6", PLUGIN_MIN_PORT="0", PLUGIN_MAX_PORT="0")
env.pop("PLUGIN_CLIENT_CERT", None)
samples = []
for _ in range(50):
    t0 = time.perf_counter()
    p = subprocess.Popen([binary], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    line = p.stdout.readline()
    samples.append((time.perf_counter() - t0) * 1000)
    p.kill(); p.wait()
    if not line.startswith(b"1|6|"):
        sys.exit(f"unexpected handshake line: {line!r}")
samples.sort()
print(f"{statistics.median(samples):.2f} {samples[int(len(samples)*0.9)]:.2f}")
PY
)
hs_med=${hs% *}; hs_p90=${hs#* }

echo
echo "| measurement | flexus provider | hashicorp/null 2.1.2 | ratio (flexus / null) | goal |"
echo "|---|---|---|---|---|"
echo "| \`terraform plan -refresh=false\`, $N resources, median of $RUNS | ${mf} ms | ${mn} ms | $(awk -v a="$mf" -v b="$mn" 'BEGIN{printf "%.2f", a/b}') | <= 1.00 |"
echo "| provider start -> handshake line, median (p90) of 50 | ${hs_med} ms (${hs_p90} ms) | - | - | <= 20 ms |"
echo
echo "runs: flexus ${tf_times[*]} ms; null ${null_times[*]} ms; terraform $("$TF" version | head -1)"

#!/usr/bin/env bash
# Provider benchmarks, side by side in one run (the lead wires this into `make bench`):
#  1. `terraform plan -refresh=false` over 500 flexus_autoscaling_policy resources against
#     500 null_resource (hashicorp/null 2.1.2, the Go SDK), same Terraform, same machine,
#     runs interleaved; median of $RUNS runs each: wall time, the CPU of the whole plan
#     (Terraform and its provider processes, /usr/bin/time) and the CPU of the provider
#     processes alone (each provider binary is started through a /usr/bin/time wrapper),
#     per resource. The same 500 policies with 500 different targets show what the
#     provider's parse cache saves when nothing repeats.
#  2. Terraform's own CPU (plan CPU minus provider CPU) on the policy schema declared with
#     nested blocks (as flexus_autoscaling_policy is) against nested attributes (protocol 6
#     nested_type), with a logic-free provider serving both (provider/examples/schema_bench.rs).
#  3. provider process start -> go-plugin handshake line on stdout (median of 50 starts).
# Prints a Markdown table (copy it into docs/benchmarks.md).
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
RUNS="${RUNS:-5}"
N="${N:-500}"
TF="${TERRAFORM:-$root/.tools/bin/terraform}"
export CHECKPOINT_DISABLE=1 TF_IN_AUTOMATION=1 TF_INPUT=0
scripts/install-tools.sh >/dev/null 2>&1 || scripts/install-tools.sh
cargo build -q --release -p terraform-provider-flexus --bin terraform-provider-flexus --example schema_bench
target="${CARGO_TARGET_DIR:-$root/target}"
bin="$target/release/terraform-provider-flexus"
benchbin="$target/release/examples/schema_bench"
nullmirror="$root/.tools/mirror"
[ -d "$nullmirror/registry.terraform.io/hashicorp/null" ] || { echo "bench: hashicorp/null missing from $nullmirror (run make tools)" >&2; exit 1; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
plat="$("$root/scripts/provider-platform.sh")"
# Each provider is started through a wrapper that appends its CPU (user, system seconds)
# to $PROVIDER_CPU_LOG when it exits (Terraform shuts providers down gracefully).
wrap() { # real-binary wrapper-path
  printf '#!/bin/sh\nexec /usr/bin/time -f "%%U %%S" -a -o "$PROVIDER_CPU_LOG" "%s" "$@"\n' "$1" > "$2"
  chmod +x "$2"
}
mkdir -p "$work/mirror/registry.terraform.io/flexus/flexus/0.1.0/$plat"
wrap "$bin" "$work/mirror/registry.terraform.io/flexus/flexus/0.1.0/$plat/terraform-provider-flexus_v0.1.0"
mkdir -p "$work/mirror/registry.terraform.io/flexus/flexusbench/0.1.0/$plat"
wrap "$benchbin" "$work/mirror/registry.terraform.io/flexus/flexusbench/0.1.0/$plat/terraform-provider-flexusbench_v0.1.0"
nulldir="$(ls -d "$nullmirror"/registry.terraform.io/hashicorp/null/2.1.2/*/ | head -1)"
nullbin="$(ls "$nulldir"terraform-provider-null_* | head -1)"
mkdir -p "$work/mirror/registry.terraform.io/hashicorp/null/2.1.2/$plat"
wrap "$nullbin" "$work/mirror/registry.terraform.io/hashicorp/null/2.1.2/$plat/$(basename "$nullbin")"
cat > "$work/terraformrc" <<RC
provider_installation {
  filesystem_mirror {
    path    = "$work/mirror"
    include = ["registry.terraform.io/flexus/*", "registry.terraform.io/hashicorp/*"]
  }
  direct {
    exclude = ["registry.terraform.io/flexus/*", "registry.terraform.io/hashicorp/*"]
  }
}
RC
export TF_CLI_CONFIG_FILE="$work/terraformrc"

mkdir -p "$work/flexus" "$work/distinct" "$work/null" "$work/blocks" "$work/nested"
required() { # name
  printf 'terraform {\n  required_providers {\n    %s = {\n      source  = "flexus/%s"\n      version = "0.1.0"\n    }\n  }\n}\n' "$1" "$1"
}
# The docs' example policy ($example) as $N resources of type $1, policy-i on pool-i, with
# the metric target $2: what a configuration with many policies plans.
example=examples/resources/flexus_autoscaling_policy/resource.tf
policies() { # resource-type target-expression
  local out
  out="$(sed -e "s/^resource \"flexus_autoscaling_policy\" \"inference\" {\$/resource \"$1\" \"p\" {\n  count    = $N/" \
    -e 's/^  name .*/  name     = "policy-${count.index}"/' \
    -e 's/^  pool .*/  pool     = "pool-${count.index}"/' \
    -e "s/^    target = 60\$/    target = $2/" "$example")"
  [[ $out == *"count    = $N"* && $out == *'"pool-${count.index}"'* && $out == *"target = $2"* ]] ||
    { echo "bench: $example no longer has the resource, name, pool and target lines this rewrites" >&2; exit 1; }
  printf '%s\n' "$out"
}
provider_block='provider "flexus" {
  endpoint  = "http://127.0.0.1:9"
  namespace = "bench"
}'
{ required flexus; echo "$provider_block"; policies flexus_autoscaling_policy 60; } > "$work/flexus/main.tf"
{ required flexus; echo "$provider_block"; policies flexus_autoscaling_policy '10 + count.index * 0.1'; } > "$work/distinct/main.tf"
{ required flexusbench; policies flexusbench_policy_blocks 60; } > "$work/blocks/main.tf"
# The same policy with the nested attributes of protocol 6 instead of blocks.
{ required flexusbench; cat <<TF
resource "flexusbench_policy_nested" "p" {
  count    = $N
  name     = "policy-\${count.index}"
  pool     = "pool-\${count.index}"
  strategy = "target_tracking"
  bounds   = { min = 2, max = 20 }
  metric = [{
    name   = "cpu"
    kind   = "cpu"
    target = 60
    source = { type = "cloud_eye", metric_name = "cpu_util" }
  }]
  scale_in = {
    stabilisation_window = "5m"
    policy               = [{ type = "percent", value = 25, period = "1m" }]
  }
}
TF
} > "$work/nested/main.tf"
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
workloads="flexus distinct null blocks nested"
for d in $workloads; do
  (cd "$work/$d" && "$TF" init -no-color >/dev/null) || { echo "bench: terraform init failed in $d" >&2; exit 1; }
done

now() { date +%s%N; }
declare -A wall cpu prov
for i in $(seq 1 "$RUNS"); do
  for d in $workloads; do
    log="$work/cpu-$d-$i.log"; : > "$log"
    t0=$(now)
    (cd "$work/$d" && PROVIDER_CPU_LOG="$log" /usr/bin/time -f "%U %S" -o "$work/tf-$d-$i.time" \
      "$TF" plan -refresh=false -no-color -input=false >/dev/null) || { echo "bench: plan failed in $d" >&2; exit 1; }
    t1=$(now)
    wall[$d]+="$(( (t1 - t0) / 1000000 )) "
    cpu[$d]+="$(awk '{printf "%d", ($1 + $2) * 1000}' "$work/tf-$d-$i.time") "
    prov[$d]+="$(awk '{s += $1 + $2} END {printf "%d", s * 1000}' "$log") "
  done
done
median() { printf '%s\n' $@ | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
# Terraform's own CPU per run: plan CPU minus provider CPU.
core() { paste -d' ' <(printf '%s\n' ${cpu[$1]}) <(printf '%s\n' ${prov[$1]}) | awk '{print $1 - $2}'; }
per() { awk -v ms="$1" -v n="$N" 'BEGIN{printf "%.0f µs", ms * 1000 / n}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (b > 0) printf "%.2f", a/b; else print "-" }'; }
for d in $workloads; do
  declare "P_$d=$(median ${prov[$d]})" "C_$d=$(median ${cpu[$d]})" "W_$d=$(median ${wall[$d]})" "K_$d=$(median $(core $d))"
done

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
echo "| measurement ($N resources, median of $RUNS) | flexus provider | hashicorp/null 2.1.2 | ratio (flexus / null) | goal |"
echo "|---|---|---|---|---|"
echo "| provider processes' CPU per resource, \`plan -refresh=false\` | $(per "$P_flexus") (${P_flexus} ms) | $(per "$P_null") (${P_null} ms) | $(ratio "$P_flexus" "$P_null") | <= 1.00 |"
echo "| the same, 500 different policies (target = 10 + 0.1 × index) | $(per "$P_distinct") (${P_distinct} ms) | $(per "$P_null") | $(ratio "$P_distinct" "$P_null") | - |"
echo "| whole plan CPU (Terraform + providers) | ${C_flexus} ms | ${C_null} ms | $(ratio "$C_flexus" "$C_null") | - |"
echo "| \`terraform plan -refresh=false\` wall time | ${W_flexus} ms | ${W_null} ms | $(ratio "$W_flexus" "$W_null") | - |"
echo "| provider start -> handshake line, median (p90) of 50 | ${hs_med} ms (${hs_p90} ms) | - | - | <= 20 ms |"
echo
echo "| the policy schema as (schema_bench provider, no logic) | Terraform's own CPU (plan - provider) | provider CPU | wall |"
echo "|---|---|---|---|"
echo "| nested blocks (\`bounds { ... }\`, as the provider declares it) | ${K_blocks} ms | ${P_blocks} ms | ${W_blocks} ms |"
echo "| nested attributes (\`bounds = { ... }\`, protocol 6 nested_type) | ${K_nested} ms | ${P_nested} ms | ${W_nested} ms |"
echo "| ratio nested / blocks | $(ratio "$K_nested" "$K_blocks") | $(ratio "$P_nested" "$P_blocks") | $(ratio "$W_nested" "$W_blocks") |"
echo
for d in $workloads; do
  echo "runs $d (wall / plan CPU / provider CPU, ms): ${wall[$d]}/ ${cpu[$d]}/ ${prov[$d]}"
done
echo "terraform: $("$TF" version | head -1)"

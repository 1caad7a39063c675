#!/usr/bin/env bash
# Installs terraform-provider-flexus where Terraform finds it with no configuration: the
# implied filesystem mirror ~/.terraform.d/plugins (unpacked layout)
#   ~/.terraform.d/plugins/registry.terraform.io/flexus/flexus/VERSION/OS_ARCH/terraform-provider-flexus_vVERSION
# Usage: scripts/install-provider.sh [BINARY]
#   BINARY      default: the release build (`make install` builds it first)
#   PLUGIN_DIR  instead of ~/.terraform.d/plugins (e.g. a filesystem_mirror path)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="${1:-${CARGO_TARGET_DIR:-$root/target}/release/terraform-provider-flexus}"
if [ ! -x "$bin" ]; then
  echo "install-provider: $bin is missing; run make install (it builds the release binary first)" >&2
  exit 1
fi
version="$("$bin" version)"
platform="$("$root/scripts/provider-platform.sh")"
plugins="${PLUGIN_DIR:-$HOME/.terraform.d/plugins}"
dir="$plugins/registry.terraform.io/flexus/flexus/$version/$platform"
mkdir -p "$dir"
install -m 0755 "$bin" "$dir/terraform-provider-flexus_v$version"
echo "installed terraform-provider-flexus $version ($platform) in $dir"
echo "use it with: required_providers { flexus = { source = \"flexus/flexus\", version = \"$version\" } }, then terraform init"

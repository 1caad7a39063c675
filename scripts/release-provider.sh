#!/usr/bin/env bash
# Writes the registry release layout of terraform-provider-flexus into $DIST (default dist/):
#   terraform-provider-flexus_VERSION_OS_ARCH.zip     one per platform; holds terraform-provider-flexus_vVERSION
#   terraform-provider-flexus_VERSION_manifest.json   {"version":1,"metadata":{"protocol_versions":["6.0"]}}
#   terraform-provider-flexus_VERSION_SHA256SUMS      sha256 of the zips and the manifest
# A zip also works as a packed filesystem or network mirror entry: put it under
# <mirror>/registry.terraform.io/flexus/flexus/.
# Usage: scripts/release-provider.sh [BINARY]
#   BINARY   package this binary for the host platform (no build)
#   TARGETS  Rust target triples to build and package (default: the host); each needs its
#            rustup target and linker installed. Signing the sums (.sig) is left to the
#            publisher's GPG key.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dist="${DIST:-$root/dist}"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$dist"

package() { # binary platform
  local bin="$1" platform="$2" version
  version="$("$bin" version 2>/dev/null || true)"
  [ -n "$version" ] || version="$provider_version"
  mkdir -p "$work/$platform"
  install -m 0755 "$bin" "$work/$platform/terraform-provider-flexus_v$version"
  rm -f "$dist/terraform-provider-flexus_${version}_${platform}.zip"
  (cd "$work/$platform" && zip -q -X "$dist/terraform-provider-flexus_${version}_${platform}.zip" "terraform-provider-flexus_v$version")
  echo "release: $dist/terraform-provider-flexus_${version}_${platform}.zip"
}

provider_version="$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/Cargo.toml" | head -1)"
if [ $# -gt 0 ]; then
  [ -x "$1" ] || { echo "release-provider: $1 is not an executable" >&2; exit 1; }
  provider_version="$("$1" version)"
  package "$1" "$("$root/scripts/provider-platform.sh")"
else
  for t in ${TARGETS:-}; do
    cargo build --release -p terraform-provider-flexus --target "$t"
    package "$target_dir/$t/release/terraform-provider-flexus" "$("$root/scripts/provider-platform.sh" "$t")"
  done
  if [ -z "${TARGETS:-}" ]; then
    cargo build --release -p terraform-provider-flexus
    package "$target_dir/release/terraform-provider-flexus" "$("$root/scripts/provider-platform.sh")"
  fi
fi

manifest="terraform-provider-flexus_${provider_version}_manifest.json"
printf '{"version":1,"metadata":{"protocol_versions":["6.0"]}}\n' > "$dist/$manifest"
(cd "$dist" && sha256sum terraform-provider-flexus_"${provider_version}"_*.zip "$manifest" > "terraform-provider-flexus_${provider_version}_SHA256SUMS")
echo "release: $dist/terraform-provider-flexus_${provider_version}_SHA256SUMS"

#!/usr/bin/env bash
# Prints the Terraform platform name (OS_ARCH, e.g. linux_amd64) of this machine, or of the
# Rust target triple given as $1 (x86_64-unknown-linux-gnu -> linux_amd64).
set -euo pipefail
if [ $# -gt 0 ]; then
  arch="${1%%-*}"
  case "$1" in
    *linux*) os=linux ;;
    *darwin*) os=darwin ;;
    *windows*) os=windows ;;
    *) echo "provider-platform: unknown OS in target $1" >&2; exit 1 ;;
  esac
else
  arch="$(uname -m)"
  case "$(uname -s)" in
    Linux) os=linux ;;
    Darwin) os=darwin ;;
    *) echo "provider-platform: unknown OS $(uname -s)" >&2; exit 1 ;;
  esac
fi
case "$arch" in
  x86_64|amd64) arch=amd64 ;;
  aarch64|arm64) arch=arm64 ;;
  *) echo "provider-platform: unknown architecture $arch" >&2; exit 1 ;;
esac
echo "${os}_${arch}"

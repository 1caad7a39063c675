#!/usr/bin/env bash
# Installs the Debian packages whose servers the integration tests start on loopback
# (each test starts its own instance with a temporary data directory), and the headless
# browser the dashboard tests drive (chromium + chromedriver).
set -euo pipefail
missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v prometheus >/dev/null 2>&1 || missing+=(prometheus)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
# Chromium draws text with the fonts it finds; screenshots need at least one.
[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || missing+=(fonts-dejavu-core)
# PostgreSQL 15 for the store suite and the multi-agent (lease) test; the tests run
# /usr/lib/postgresql/15/bin/{initdb,postgres} themselves on a loopback port.
[ -x /usr/lib/postgresql/15/bin/postgres ] || missing+=(postgresql-15)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "install-services: need root to apt-get install ${missing[*]}" >&2
    exit 1
  fi
  echo "install-services: apt-get install ${missing[*]}" >&2
  # The tests start their own PostgreSQL; no system cluster is wanted.
  if [[ " ${missing[*]} " == *" postgresql-15 "* ]]; then
    mkdir -p /etc/postgresql-common
    grep -qs '^create_main_cluster' /etc/postgresql-common/createcluster.conf ||
      echo 'create_main_cluster = false' >>/etc/postgresql-common/createcluster.conf
  fi
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

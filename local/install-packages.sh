#!/usr/bin/env bash
# Installs the Debian packages Troveless needs on this machine, if any is missing. Run as root
# on a Debian-like machine (CI does); elsewhere it prints what to install and exits 1.
set -euo pipefail
packages=(default-jre-headless python3-openstackclient python3-troveclient python3-mistralclient mariadb-server mariadb-client mariadb-backup redis-server postgresql-15 zstd nftables xfsprogs)
commands=(java openstack "" "" "" "" "" "" "" "" "" nft xfs_growfs)
missing=()
for i in "${!packages[@]}"; do
  pkg=${packages[$i]}
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    # A command of the same purpose already on PATH (e.g. another JDK) is good enough.
    cmd=${commands[$i]}
    if [ -n "$cmd" ] && command -v "$cmd" >/dev/null 2>&1; then continue; fi
    missing+=("$pkg")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "missing: ${missing[*]} (install them with: apt-get install --no-install-recommends ${missing[*]})" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# No systemd here: packages must not try to start their services.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
  chmod +x /usr/sbin/policy-rc.d
fi
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"

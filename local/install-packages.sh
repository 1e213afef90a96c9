#!/usr/bin/env bash
# Installs the Debian packages Troveless needs on this machine, if any is missing, and the older
# MariaDB build that runs beside the system's (lib/catalog/mariadb-versions.ts). Run as root
# on a Debian-like machine (CI does); elsewhere it prints what to install and exits 1.
set -euo pipefail
packages=(default-jre-headless python3-openstackclient python3-troveclient python3-mistralclient mariadb-server mariadb-client mariadb-backup galera-4 socat redis-server postgresql-15 zstd nftables xfsprogs)
commands=(java openstack "" "" "" "" "" "" "" "" "" "" nft xfs_growfs)
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

# MariaDB 10.11.18 (bookworm main), extracted, not installed: the system's own 10.11 is
# bookworm-security's 10.11.19, and an instance created on 10.11.18 upgrades to it. The
# packages below and the directory are lib/catalog/mariadb-versions.ts's; a stamp naming them
# says the extraction is complete (nothing is fetched again then).
mariadb_dir=/usr/local/lib/troveless/mariadb-10.11.18
mariadb_version=1:10.11.18-0+deb12u1
mariadb_packages=(mariadb-server-core mariadb-client-core mariadb-backup mariadb-server)
mariadb_stamp="${mariadb_packages[*]/%/=$mariadb_version}"
mariadb_ready() { [ "$(cat "$mariadb_dir/.troveless-packages" 2>/dev/null)" = "$mariadb_stamp" ]; }

if [ ${#missing[@]} -eq 0 ] && mariadb_ready; then exit 0; fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  [ ${#missing[@]} -eq 0 ] ||
    echo "missing: ${missing[*]} (install them with: apt-get install --no-install-recommends ${missing[*]})" >&2
  mariadb_ready || echo "missing: MariaDB 10.11.18 in $mariadb_dir (run $0 as root)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
if [ ${#missing[@]} -gt 0 ]; then
  # No systemd here: packages must not try to start their services.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
  fi
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if ! mariadb_ready; then
  echo "extracting MariaDB ${mariadb_version#1:} into $mariadb_dir"
  work=$(mktemp -d /tmp/troveless-mariadb.XXXXXX)
  trap 'rm -rf "$work"' EXIT
  # apt's download sandbox user must be able to write there.
  chmod 755 "$work"
  chown _apt "$work" 2>/dev/null || true
  (cd "$work" && apt-get download -qq ${mariadb_stamp}) ||
    { apt-get update -qq && (cd "$work" && apt-get download -qq ${mariadb_stamp}); }
  fresh="$mariadb_dir.new-$$"
  rm -rf "$fresh"
  mkdir -p "$fresh"
  for deb in "$work"/*.deb; do dpkg-deb -x "$deb" "$fresh"; done
  # The programs, messages, charsets, SQL scripts and plugins stay; docs, man pages and the
  # packages' /etc (init scripts, the system's my.cnf) are not this build's business.
  rm -rf "$fresh/etc" "$fresh/lib" "$fresh/usr/share/doc" "$fresh/usr/share/man" "$fresh/usr/share/lintian" \
    "$fresh/usr/share/apport" "$fresh/usr/lib/tmpfiles.d" "$fresh/usr/lib/systemd"
  for program in sbin/mariadbd bin/mariadb-install-db bin/my_print_defaults bin/mariadb-upgrade bin/mariadb \
    bin/mariadb-check bin/mariadb-backup bin/mbstream share/mysql/english/errmsg.sys lib/mysql/plugin; do
    [ -e "$fresh/usr/$program" ] || { echo "MariaDB ${mariadb_version#1:}: no usr/$program in its packages" >&2; exit 1; }
  done
  # Every instance's OS user reads and runs it; nobody but root changes it.
  chown -R root:root "$fresh"
  chmod -R u=rwX,go=rX "$fresh"
  printf '%s\n' "$mariadb_stamp" > "$fresh/.troveless-packages"
  rm -rf "$mariadb_dir"
  mv "$fresh" "$mariadb_dir"
fi

#!/usr/bin/env bash
# Makes the base image of Usher's container image, localhost/usher-base-debian:bookworm, when it is
# missing: a Debian 12 (bookworm) root file system made by debootstrap --variant=minbase from this machine's
# Debian mirror (no container registry needed), upgraded with bookworm-updates and bookworm-security, and
# told by dpkg to leave out manuals, documentation and translations. The root file system is kept as a
# tarball under $USHER_IMAGE_CACHE (default /var/tmp/usher-image-cache) so a lost image is imported again in
# seconds. Installs buildah and debootstrap when missing (as root). Sourced helpers: scripts/image-env.sh.
#
#   scripts/image-base.sh            # make the base when missing (a no-op in a second once it exists)
#   scripts/image-base.sh --rebuild  # debootstrap again (picks up new point releases and security fixes)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=scripts/image-env.sh
. "$here/image-env.sh"

rebuild=false
[ "${1:-}" = "--rebuild" ] && rebuild=true

image_tools
if ! $rebuild && bh inspect --type image "$USHER_BASE_IMAGE" >/dev/null 2>&1; then
  echo "base image $USHER_BASE_IMAGE is there"
  exit 0
fi

mkdir -p "$USHER_IMAGE_CACHE"
tarball="$USHER_IMAGE_CACHE/debian-bookworm-minbase.tar"
t0=$SECONDS

if $rebuild || [ ! -s "$tarball" ]; then
  # the mirror this machine's apt uses (deb822 or one-line format), unless DEBIAN_MIRROR says otherwise
  mirror="${DEBIAN_MIRROR:-}"
  if [ -z "$mirror" ]; then
    mirror="$(awk '/^URIs:/ && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)"
  fi
  if [ -z "$mirror" ]; then
    mirror="$(awk '$1 == "deb" && $3 == "bookworm" {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)"
  fi
  mirror="${mirror:-http://deb.debian.org/debian}"
  security="${DEBIAN_SECURITY_MIRROR:-${mirror%/debian}/debian-security}"

  root="$(mktemp -d /var/tmp/usher-rootfs.XXXXXX)"
  trap 'rm -rf "$root"' EXIT
  echo "debootstrap bookworm (minbase) from $mirror"
  nice -n 19 debootstrap --variant=minbase bookworm "$root" "$mirror" >"$root.log" 2>&1 || {
    tail -30 "$root.log"
    exit 1
  }
  rm -f "$root.log"

  # no manuals, documentation (copyright files stay) or translations in anything installed later
  cat >"$root/etc/dpkg/dpkg.cfg.d/usher-no-docs" <<'EOF'
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/doc/*
path-include=/usr/share/doc/*/copyright
path-exclude=/usr/share/locale/*
path-exclude=/usr/share/lintian/*
EOF
  # apt installs only what is asked for, and forgets its lists and archives after each run
  cat >"$root/etc/apt/apt.conf.d/90usher-small" <<'EOF'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/*.bin || true"; };
EOF
  rm -f "$root/etc/apt/sources.list"
  cat >"$root/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  # security fixes published since the point release debootstrap installed
  cp /etc/resolv.conf "$root/etc/resolv.conf"
  nice -n 19 chroot "$root" sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get upgrade -y -qq' \
    >"$root.log" 2>&1 || {
    tail -30 "$root.log"
    exit 1
  }
  rm -f "$root.log"
  rm -rf "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/locale/* "$root"/var/lib/apt/lists/* \
    "$root"/var/cache/apt/* "$root"/var/cache/debconf/*-old "$root"/var/log/* "$root"/tmp/* "$root"/root/.bash_history
  find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
  : >"$root/etc/resolv.conf"
  tar --numeric-owner --xattrs -C "$root" -cf "$tarball.part" .
  mv "$tarball.part" "$tarball"
  rm -rf "$root"
  trap - EXIT
  echo "root file system made in $((SECONDS - t0)) s ($(du -h "$tarball" | cut -f1))"
fi

ctr="$(bh from scratch)"
trap 'bh rm "$ctr" >/dev/null 2>&1 || true' EXIT
mnt="$(bh mount "$ctr")"
tar --numeric-owner --xattrs -C "$mnt" -xf "$tarball"
bh umount "$ctr" >/dev/null
bh config --os linux --arch amd64 \
  --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --env LANG=C.UTF-8 \
  --cmd /bin/bash \
  --label org.opencontainers.image.description="Debian 12 (bookworm) minbase, made by Usher's scripts/image-base.sh" \
  "$ctr"
bh commit --quiet --rm "$ctr" "$USHER_BASE_IMAGE" >/dev/null
trap - EXIT
echo "base image $USHER_BASE_IMAGE made in $((SECONDS - t0)) s ($(bh images --format '{{.Size}}' "$USHER_BASE_IMAGE"))"

# shellcheck shell=bash
# Sourced by scripts/image-base.sh, build-image.sh and check-image.sh: where images are kept and how
# buildah is called. buildah keeps its images in vfs storage and runs build steps with chroot isolation,
# which work inside a container or an unprivileged sandbox where overlay mounts and namespaces do not.
# Override USHER_BASE_IMAGE / USHER_IMAGE / USHER_IMAGE_CACHE / BUILDAH_STORAGE_DRIVER to taste.

USHER_BASE_IMAGE="${USHER_BASE_IMAGE:-localhost/usher-base-debian:bookworm}"
USHER_IMAGE="${USHER_IMAGE:-localhost/usher:latest}"
USHER_IMAGE_CACHE="${USHER_IMAGE_CACHE:-/var/tmp/usher-image-cache}"
BUILDAH_STORAGE_DRIVER="${BUILDAH_STORAGE_DRIVER:-vfs}"
export BUILDAH_ISOLATION="${BUILDAH_ISOLATION:-chroot}"

bh() { buildah --storage-driver "$BUILDAH_STORAGE_DRIVER" "$@"; }

# installs buildah and debootstrap (and curl, ss) when missing; needs root
image_tools() {
  local missing=()
  command -v buildah >/dev/null || missing+=(buildah)
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  [ -e /usr/share/keyrings/debian-archive-keyring.gpg ] || missing+=(debian-archive-keyring)
  command -v curl >/dev/null || missing+=(curl ca-certificates)
  command -v ss >/dev/null || missing+=(iproute2)
  if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
      echo "image tools: ${missing[*]} missing (install them, or run as root)" >&2
      return 1
    fi
    echo "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

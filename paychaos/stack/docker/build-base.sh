#!/usr/bin/env bash
# Build the local base image every paychaos image starts FROM, without a registry.
#
#   stack/docker/build-base.sh [TAG]        (default TAG paychaos/base:bookworm)
#   stack/docker/build-base.sh paychaos/base:trixie   (Debian 13: the NestJS image's base)
#
# The Debian suite is the tag's own when it names one (bookworm, trixie), else
# DEBIAN_SUITE (default bookworm).
# debootstrap (minbase variant) builds a Debian root file system from the
# Debian mirror the host's apt already uses (override: DEBIAN_MIRROR), and
# `docker import` turns it into an image. Nothing is pulled from a registry.
# Needs root (debootstrap), the docker client and a running daemon (DOCKER_HOST).
set -euo pipefail

TAG="${1:-paychaos/base:bookworm}"
case "${TAG##*:}" in
    bookworm | trixie) SUITE="${TAG##*:}" ;;
    *) SUITE="${DEBIAN_SUITE:-bookworm}" ;;
esac

host_mirror() {
    # the first deb.debian.org-style URI of the host's apt sources (deb822 or one-line)
    local uri=""
    if compgen -G "/etc/apt/sources.list.d/*.sources" >/dev/null; then
        uri="$(grep -h '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null \
            | awk '{print $2}' | grep -v -- '-security' | grep '/debian/\?$' | head -n1 || true)"
    fi
    if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
        uri="$(awk '/^deb /{print $2}' /etc/apt/sources.list | grep -v -- '-security' \
            | grep '/debian/\?$' | head -n1 || true)"
    fi
    echo "${uri:-http://deb.debian.org/debian}"
}

MIRROR="${DEBIAN_MIRROR:-$(host_mirror)}"
MIRROR="${MIRROR%/}"
SECURITY="${DEBIAN_SECURITY_MIRROR:-${MIRROR%/debian}/debian-security}"

if docker image inspect "$TAG" >/dev/null 2>&1 && [ "${REBUILD:-0}" != "1" ]; then
    echo "build-base: $TAG exists (REBUILD=1 to rebuild)"
    exit 0
fi
command -v debootstrap >/dev/null || {
    echo "build-base: debootstrap is missing (apt-get install -y debootstrap)" >&2
    exit 3
}

ROOTFS="$(mktemp -d /tmp/paychaos-rootfs.XXXXXX)"
chmod 0755 "$ROOTFS"  # it becomes the image's "/": mktemp's 0700 would lock out non-root users
trap 'rm -rf "$ROOTFS"' EXIT
start=$(date +%s)
echo "build-base: debootstrap --variant=minbase $SUITE from $MIRROR"
debootstrap --variant=minbase "$SUITE" "$ROOTFS" "$MIRROR" >"$ROOTFS.log" 2>&1 || {
    echo "build-base: debootstrap failed; last lines:" >&2
    tail -n 20 "$ROOTFS.log" >&2
    exit 1
}
rm -f "$ROOTFS.log"
cat >"$ROOTFS/etc/apt/sources.list" <<SOURCES
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb $SECURITY $SUITE-security main
SOURCES
# smaller images: no apt caches, no docs from later installs
cat >"$ROOTFS/etc/dpkg/dpkg.cfg.d/01-paychaos-nodoc" <<'NODOC'
path-exclude=/usr/share/doc/*
path-exclude=/usr/share/man/*
path-exclude=/usr/share/locale/*
path-include=/usr/share/locale/locale.alias
NODOC
echo 'APT::Install-Recommends "false";' >"$ROOTFS/etc/apt/apt.conf.d/01-paychaos-norecommends"
rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/lib/apt/lists/*
tar --numeric-owner -C "$ROOTFS" -c . | docker import \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["/bin/bash"]' \
    - "$TAG" >/dev/null
echo "build-base: $TAG built in $(( $(date +%s) - start )) s"

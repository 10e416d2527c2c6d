#!/bin/sh
# Turns a staging tree made by `make install DESTDIR=ROOT PREFIX=/usr` into the
# firegw Debian package; `make deb` calls it. The tree is finished in place:
# programs stripped, man pages compressed, DEBIAN/ written. Depends comes from
# the programs' real shared-library needs (dpkg-shlibdeps reads the shlibs and
# symbols files of the installed library packages of ARCH).
#
# Usage: packaging/build-deb.sh ROOT DEB ARCH VERSION
# Environment: STRIP (strip program for ARCH, default strip), MAINTAINER, and for a
# cross-built package SHLIBS_TREES: the target's library packages as package trees
# (packaging/cross-sysroot.sh makes them), where their symbols files are read.
set -eu

if [ $# -ne 4 ]; then
    echo "usage: $0 ROOT DEB ARCH VERSION" >&2
    exit 2
fi
root=$1
deb=$2
arch=$3
version=$4
here=$(cd "$(dirname "$0")" && pwd)
strip=${STRIP:-strip}
maintainer=${MAINTAINER:-firegw maintainers <firegw@localhost>}
programs="usr/sbin/firegw usr/bin/firegw-watch usr/bin/firegw-sim"

for p in $programs; do
    if [ ! -x "$root/$p" ]; then
        echo "$0: $root/$p is missing: install into ROOT with PREFIX=/usr first" >&2
        exit 1
    fi
    "$strip" --strip-unneeded --remove-section=.comment "$root/$p"
done
find "$root/usr/share/man" -type f -name '*.[1-8]' -exec gzip -9nf {} +

# dpkg-shlibdeps wants to run in a source tree: give it the smallest one.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/debian"
printf 'Source: firegw\n\nPackage: firegw\nArchitecture: any\n' >"$work/debian/control"
# ROOT/DEBIAN marks ROOT as the package's tree, where its programs are looked for.
mkdir -p "$root/DEBIAN"
abs_root=$(cd "$root" && pwd)
set --
for t in ${SHLIBS_TREES:-}; do
    set -- "$@" "-S$t"
done
for p in $programs; do
    set -- "$@" "-e$abs_root/$p"
done
shlibs=$(cd "$work" && DEB_HOST_ARCH=$arch dpkg-shlibdeps -O "$@")
depends=$(printf '%s\n' "$shlibs" | sed -n 's/^shlibs:Depends=//p')
if [ -z "$depends" ]; then
    echo "$0: dpkg-shlibdeps found no dependencies: $shlibs" >&2
    exit 1
fi
# The postinst creates the system user with either of them.
depends="$depends, systemd-sysusers | adduser"

size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
sed -e "s#@VERSION@#$version#" -e "s#@ARCH@#$arch#" -e "s#@MAINTAINER@#$maintainer#" \
    -e "s#@SIZE@#$size#" -e "s#@DEPENDS@#$depends#" "$here/control.in" >"$root/DEBIAN/control"
(cd "$root" && find etc -type f | sed 's|^|/|' | sort) >"$root/DEBIAN/conffiles"
for s in postinst prerm postrm; do
    install -m 0755 "$here/$s" "$root/DEBIAN/$s"
done
(cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z |
    xargs -0 md5sum) >"$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN/control" "$root/DEBIAN/conffiles" "$root/DEBIAN/md5sums"

dpkg-deb --root-owner-group -Zxz --build "$root" "$deb"

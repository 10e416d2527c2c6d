#!/bin/sh
# Makes the sysroot a cross-build of firegw compiles against and qemu-user runs in:
# the target's Debian library packages (-dev and their run-time dependencies),
# fetched by apt and unpacked into DEST, without installing anything on this
# machine. apt works on private state here (its own package lists for the target
# architecture, an empty package status, its own cache): it resolves the whole
# set for that architecture alone, so the target's versions never have to match
# this machine's (multiarch "same" packages would have to, and a security update
# published for one architecture before another would break the build), and the
# machine's own apt and dpkg never hear of the target architecture.
#
# DEST.debs/NAME/ keeps each package as a package tree with its DEBIAN/ control
# files: dpkg-shlibdeps reads their symbols and shlibs files to compute the
# Depends of a cross-built firegw package (make deb CROSS=...).
#
# Usage: packaging/cross-sysroot.sh TRIPLET DEST PACKAGE...
# Uses the machine's apt sources; `make cross-deps` runs it when DEST is missing or
# was made for another PACKAGE list.
set -eu

if [ $# -lt 3 ]; then
    echo "usage: $0 TRIPLET DEST PACKAGE..." >&2
    exit 2
fi
triplet=$1
dest=$(realpath -m "$2") # apt takes its directories as absolute paths
shift 2
arch=$(dpkg-architecture -t"$triplet" -qDEB_HOST_ARCH 2>/dev/null)
if [ -z "$arch" ]; then
    echo "$0: $triplet is not a GNU triplet dpkg knows" >&2
    exit 1
fi

state=$dest.apt
rm -rf "$dest" "$dest.debs" "$state"
mkdir -p "$state/lists/partial" "$state/archives/partial" "$state/cache"
: >"$state/status"
# Read after the machine's own apt.conf.d (sources, proxy), and over it.
APT_CONFIG=$state/apt.conf
export APT_CONFIG
cat >"$APT_CONFIG" <<EOF
Debug::NoLocking "true";
Dir::State::status "$state/status";
Dir::State::Lists "$state/lists";
Dir::Cache "$state/cache";
Dir::Cache::archives "$state/archives";
APT::Architecture "$arch";
APT::Architectures { "$arch"; };
EOF
# As root apt would download as its own user, who cannot write here.
[ "$(id -u)" != 0 ] || echo 'APT::Sandbox::User "root";' >>"$APT_CONFIG"

# A mirror in the middle of a sync can fail one index and leave the others usable:
# go on, and let the download below say what is really missing.
if ! apt-get -q update >"$state/update.log" 2>&1; then
    echo "$0: apt-get update for $arch failed in part; going on with the lists it got:" >&2
    grep '^E:' "$state/update.log" | head -3 >&2 || true
fi
apt-get -q -y --no-install-recommends --download-only install "$@" >"$state/apt.log" 2>&1 || {
    cat "$state/apt.log" >&2
    echo "$0: apt could not fetch the $arch packages" >&2
    exit 1
}

mkdir -p "$dest" "$dest.debs"
for deb in "$state"/archives/*.deb; do
    tree=$dest.debs/$(dpkg-deb -f "$deb" Package)
    dpkg-deb -R "$deb" "$tree"
    # Hard links: the sysroot costs no second copy of the files.
    cp -al --remove-destination "$tree/." "$dest/"
done
rm -rf "$dest/DEBIAN"
# Absolute links (libm.so -> /lib/TRIPLET/libm.so.6) would leave the sysroot.
find "$dest" -type l -lname '/*' | while read -r link; do
    target=$(readlink "$link")
    ln -sfn "$(realpath -m --relative-to="$(dirname "$link")" "$dest$target")" "$link"
done
# What was asked for and what it took; written last, so they mark a complete sysroot.
(cd "$state/archives" && ls -- *.deb) >"$dest/.packages"
echo "$*" >"$dest/.requested"
rm -rf "$state"

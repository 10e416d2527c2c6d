#!/bin/sh
# Installs those of the Debian packages named as arguments that are not installed
# yet, with apt-get (through sudo when not root), and nothing when all are there.
# Used by make deps and make cross-deps.
set -u
missing=
for p in "$@"; do
    dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed' ||
        missing="$missing $p"
done
[ -n "$missing" ] || exit 0
echo "Installing missing Debian packages:$missing"
if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi
# shellcheck disable=SC2086 # one word per package
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q &&
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        $missing </dev/null

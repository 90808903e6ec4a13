#!/bin/sh
# pip-for-target ARCH SUBCOMMAND [ARGS...]
#
# Run `pip SUBCOMMAND` for Linux on ARCH (amd64 or arm64) and this interpreter's Python
# version, wheels only, whatever machine the build runs on. Every manylinux tag up to
# this system's glibc is accepted: the target runs the same Debian release.
set -eu

if [ "$#" -lt 2 ]; then
    echo "usage: pip-for-target ARCH SUBCOMMAND [ARGS...]" >&2
    exit 2
fi
arch=$1 subcommand=$2
shift 2

case "$arch" in
    amd64) machine=x86_64 ;;
    arm64) machine=aarch64 ;;
    *) echo "pip-for-target: no wheels for architecture '$arch' (amd64 or arm64)" >&2; exit 1 ;;
esac

glibc_minor=$(python3 -c 'import platform; print(platform.libc_ver()[1].split(".")[1])')
python_version=$(python3 -c 'import sys; print(f"{sys.version_info[0]}{sys.version_info[1]}")')

minor=17
platforms="manylinux2014_$machine"
while [ "$minor" -le "$glibc_minor" ]; do
    platforms="$platforms manylinux_2_${minor}_$machine"
    minor=$((minor + 1))
done

for platform in $platforms; do
    set -- "$@" --platform "$platform"
done
exec python3 -m pip "$subcommand" --only-binary=:all: --implementation cp \
    --python-version "$python_version" "$@"

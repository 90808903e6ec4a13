#!/bin/sh
# debian-python fetch ARCH TARGET_ROOT OUT
# debian-python install OUT
#
# Debian's python3 for the image, with everything slow done on the build machine.
#
# Installed the usual way, `apt-get install python3` on an emulated arm64 stage spends
# most of its four minutes in two places: apt reading the package lists, and the
# packages' postinst byte-compiling the standard library with the target's (emulated)
# interpreter. A .pyc file does not depend on the architecture, only on the Python
# version and on the source file's mtime and size, so both can happen natively:
#
#   fetch    (build machine) resolves python3 for ARCH with the apt sources and the
#            dpkg status of the target's base image (mounted at TARGET_ROOT), downloads
#            exactly the .deb files apt would install there into OUT/debs, unpacks them to
#            a scratch tree and byte-compiles the same files the postinst would, into
#            OUT/pyc. The build machine must run the same Debian release as the target:
#            its python3 writes the .pyc files.
#   install  (target) installs OUT/debs with apt, so the package database is the same
#            as after `apt-get install python3`. A temporary dpkg diversion of the
#            interpreter skips the postinsts' own byte-compilation; OUT/pyc is copied
#            in first.
set -eu

usage() {
    echo "usage: debian-python fetch ARCH TARGET_ROOT OUT | install OUT" >&2
    exit 2
}

fetch() {
    arch=$1 target=$2 out=$3
    lists=/var/lib/apt/lists-$arch
    mkdir -p "$lists/partial" "$out/debs/partial" "$out/pyc"
    apt_target() {
        apt-get -q -o "APT::Architecture=$arch" -o "APT::Architectures::=$arch" \
            -o "Dir::Etc=$target/etc/apt" -o "Dir::State::status=$target/var/lib/dpkg/status" \
            -o "Dir::State::Lists=$lists" \
            -o "Dir::Cache=/tmp/apt-cache-$arch" -o "Dir::Cache::archives=$out/debs" "$@"
    }
    apt_target update
    DEBIAN_FRONTEND=noninteractive apt_target install -y --download-only \
        --no-install-recommends python3
    rm -rf "$out/debs/partial" "$out/debs/lock" "/tmp/apt-cache-$arch"

    version=$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
    echo "python$version" > "$out/python"
    if ! ls "$out/debs/"*.deb >/dev/null 2>&1 \
        && grep -qx "Package: python$version-minimal" "$target/var/lib/dpkg/status"; then
        echo "debian-python: the target already has python3 (Python $version); nothing to add"
        : > "$out/auto"
        return
    fi
    if ! ls "$out/debs/python$version-minimal_"*.deb >/dev/null 2>&1; then
        echo "debian-python: the target's python3 is not Python $version, the build" \
            "machine's: set BUILD_BASE to the same Debian release as BASE" >&2
        ls "$out/debs" >&2
        exit 1
    fi
    # What apt would mark as installed automatically: all but python3 itself.
    for deb in "$out/debs/"*.deb; do
        dpkg-deb --field "$deb" Package
    done | grep -vx python3 > "$out/auto"

    tree=$(mktemp -d)
    for deb in "$out/debs/"*.deb; do
        dpkg-deb --extract "$deb" "$tree"
    done
    # What the postinsts compile: the standard library under /usr/lib/pythonX.Y (their
    # own py_compile run) and Debian's helpers under /usr/share/python3 (py3compile).
    for deb in "$out/debs/"*.deb; do
        dpkg-deb --fsys-tarfile "$deb" | tar -t \
            | sed -n "s%^\./\(usr/lib/python$version/.*\.py\|usr/share/python3/.*\.py\)$%\1%p"
    done | python3 -c '
import importlib.util, os, py_compile, sys

tree, out = sys.argv[1:]

def in_tree(path):
    """PATH (absolute, as on the target) inside the unpacked tree, symlinks followed there."""
    for _ in range(40):
        link = os.path.join(tree, path.lstrip("/"))
        if not os.path.islink(link):
            return link
        path = os.path.normpath(os.path.join(os.path.dirname(path), os.readlink(link)))
    raise SystemExit(f"debian-python: too many symlinks at {path}")

count = 0
for line in sys.stdin:
    target = "/" + line.strip()
    source = in_tree(target)
    if not os.path.exists(source):
        continue  # a symlink to a file of a package not installed, as the postinst skips
    cfile = out + importlib.util.cache_from_source(target)
    py_compile.compile(source, cfile=cfile, dfile=target, doraise=True,
                       invalidation_mode=py_compile.PycInvalidationMode.TIMESTAMP)
    count += 1
print(f"debian-python: byte-compiled {count} files natively")
' "$tree" "$out/pyc"
    rm -rf "$tree"
}

install_debs() {
    out=$1
    if ! ls "$out/debs/"*.deb >/dev/null 2>&1; then
        return  # the base image has python3 already (see fetch)
    fi
    python=/usr/bin/$(cat "$out/python")
    # The .pyc files first: dpkg leaves them alone.
    cp -a "$out/pyc/." /
    # While dpkg configures, the interpreter is this shim. It skips the two ways the
    # postinsts byte-compile, `pythonX.Y -E -S /usr/lib/pythonX.Y/py_compile.py FILES`
    # and `py3compile -p PACKAGE /usr/share/python3/` (a script run by python3, a link to
    # pythonX.Y), whose output is already in place; anything else runs the interpreter.
    dpkg-divert --quiet --local --rename --divert "$python.debian" --add "$python"
    cat > "$python" <<EOF
#!/bin/sh
for arg in "\$@"; do
    case "\$arg" in
        -E|-S|-O) ;;
        /usr/lib/${python#/usr/bin/}/py_compile.py|/usr/bin/py3compile) exit 0 ;;
        *) break ;;
    esac
done
exec $python.debian "\$@"
EOF
    chmod 0755 "$python"
    # apt orders the Pre-Depends chain (python3 on python3-minimal on pythonX.Y-minimal);
    # with no package lists to read it starts quickly even when emulated.
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        "$out/debs/"*.deb
    rm "$python"
    dpkg-divert --quiet --local --rename --remove "$python"
    # shellcheck disable=SC2046 # one package name per line
    apt-mark auto $(cat "$out/auto") >/dev/null
    # apt's caches and the local files' index: nothing apt needs later, as after a
    # build with the usual cache mounts.
    rm -rf /var/cache/apt/* /var/lib/apt/lists/auxfiles
}

[ "$#" -ge 1 ] || usage
command=$1
shift
case "$command" in
    fetch) [ "$#" -eq 3 ] || usage; fetch "$@" ;;
    install) [ "$#" -eq 1 ] || usage; install_debs "$@" ;;
    *) usage ;;
esac

#!/bin/sh
# Makes the test-bed's stand-in for Docker's apt repository (download.docker.com/linux),
# which these machines cannot reach. Runs inside local/docker-repo (docker-repo.Dockerfile),
# started by `scripts/testbed.py docker-repo`.
#
#   docker-repo-build.sh key      make the signing key in $GNUPGHOME unless it is there
#   docker-repo-build.sh build    fill $OUT with the signed repository for $SUITES
#
# Nothing is compiled: each package is a Debian package of the same release unpacked and
# packed again under the name Docker's repository uses (docker-ce, docker-ce-cli,
# containerd.io, docker-buildx-plugin, docker-compose-plugin), with new control fields
# and the original maintainer scripts. Only the Compose and Buildx CLI plugins may come
# from another release ($PLUGIN_SUITE), when the target release lacks them: the build
# stops unless the target's own libc satisfies every GLIBC_ symbol version they need.
#
# Environment: MIRROR (Debian mirror), SUITES (e.g. "bookworm trixie"), PLUGIN_SUITE,
# GNUPGHOME (the key; docker-repo.asc in it is the public half), DEBS (download cache,
# kept between builds), OUT (the repository's root; `debian/` is made in it).
set -eu

: "${MIRROR:=http://deb.debian.org/debian}"
: "${SUITES:=bookworm trixie}"
: "${PLUGIN_SUITE:=trixie}"
: "${GNUPGHOME:=/key}"
: "${DEBS:=/debs}"
: "${OUT:=/out}"
export GNUPGHOME
ARCH=amd64
KEY_UID="noticeboard test-bed, Docker repository stand-in <testbed@noticeboard.invalid>"
MAINTAINER="noticeboard test-bed <testbed@noticeboard.invalid>"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

log() { printf 'docker-repo: %s\n' "$*"; }

make_key() {
    mkdir -p "$GNUPGHOME"
    chmod 700 "$GNUPGHOME"
    if [ ! -s "$GNUPGHOME/docker-repo.asc" ]; then
        log "making the signing key (RSA 4096, no passphrase)"
        gpg --batch --quiet --passphrase '' --quick-gen-key "$KEY_UID" rsa4096 sign never
        gpg --batch --armor --export "$KEY_UID" >"$GNUPGHOME/docker-repo.asc.new"
        mv "$GNUPGHOME/docker-repo.asc.new" "$GNUPGHOME/docker-repo.asc"
    fi
    gpgconf --kill gpg-agent 2>/dev/null || true
}

# A private apt configuration per Debian release, so that one container can read the
# package lists of several releases without touching its own.
apt_for() {
    dir=$WORK/apt/$1
    if [ ! -f "$dir/apt.conf" ]; then
        mkdir -p "$dir/lists/partial" "$dir/cache/archives/partial"
        : >"$dir/status"
        echo "deb $MIRROR $1 main" >"$dir/sources.list"
        cat >"$dir/apt.conf" <<EOF
Dir::Etc::SourceList "$dir/sources.list";
Dir::Etc::SourceParts "$dir/none";
Dir::State::Lists "$dir/lists";
Dir::State::status "$dir/status";
Dir::Cache "$dir/cache";
APT::Architecture "$ARCH";
APT::Sandbox::User "root";
EOF
        APT_CONFIG=$dir/apt.conf apt-get update -qq >&2
        # Every package's version in one pass; asking apt-cache each time is slow.
        cat "$dir"/lists/*_Packages | awk '/^Package: /{p=$2} /^Version: /{print p, $2}' \
            >"$dir/versions"
    fi
    echo "$dir/apt.conf"
}

candidate() { # release package -> version, empty when the release lacks it
    conf=$(apt_for "$1")
    awk -v p="$2" '$1 == p { print $2; exit }' "${conf%/apt.conf}/versions"
}

# Download a release's package into the cache unless that exact version is there.
# Prints the .deb's path.
fetch() { # release package
    version=$(candidate "$1" "$2")
    [ -n "$version" ] || {
        echo "docker-repo: $1 has no package $2" >&2
        exit 1
    }
    dir=$DEBS/$1
    mkdir -p "$dir"
    file=$dir/${2}_$(echo "$version" | sed 's/^[0-9]*://')_$ARCH.deb
    if [ ! -s "$file" ]; then
        (cd "$WORK" && APT_CONFIG=$(apt_for "$1") apt-get download -qq "$2=$version" >&2)
        mv "$WORK"/"${2}"_*.deb "$file"
    fi
    echo "$file"
}

# The highest GLIBC_x.y symbol version any ELF file under a tree needs; empty if none.
glibc_needed() {
    find "$1" -type f -perm -u+x -exec objdump -T {} \; 2>/dev/null |
        grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -n1
}

# A dependency list without the named packages: "libc6 (>= 2.34), tini" minus tini.
deps_without() { # "list" name...
    list=$1
    shift
    printf '%s\n' "$list" | tr ',' '\n' | sed 's/^ *//; s/ *$//' | while read -r dep; do
        [ -n "$dep" ] || continue
        keep=yes
        for name in "$@"; do
            [ "${dep%% *}" = "$name" ] && keep=no
        done
        [ $keep = yes ] && printf '%s\n' "$dep"
    done | paste -sd, - | sed 's/,/, /g'
}

# "libc6 (>= x.y)" for the highest GLIBC_ version a tree needs; nothing for static code.
libc_dep() {
    need=$(glibc_needed "$1")
    if [ -n "$need" ]; then echo "libc6 (>= $need)"; fi
}

join_deps() { printf '%s\n' "$@" | grep -v '^$' | paste -sd, - | sed 's/,/, /g'; }

# Unpack a Debian package into a staging tree, without its docs and lintian overrides
# (the copyright file is kept, under the new package's doc directory).
unpack() { # deb tree newname
    dpkg-deb -x "$1" "$2"
    orig=$(dpkg-deb -f "$1" Package)
    mkdir -p "$2/usr/share/doc/$3"
    if [ -f "$2/usr/share/doc/$orig/copyright" ]; then
        cp "$2/usr/share/doc/$orig/copyright" "$2/usr/share/doc/$3/copyright.$orig"
    fi
    if [ "$orig" != "$3" ]; then rm -rf "$2/usr/share/doc/$orig"; fi
    rm -rf "$2/usr/share/man" "$2/usr/share/lintian"
}

# Copy the maintainer scripts and conffiles of a Debian package into a staging tree.
keep_scripts() { # deb tree
    dpkg-deb -e "$1" "$WORK/ctl"
    mkdir -p "$2/DEBIAN"
    for f in preinst postinst prerm postrm conffiles; do
        if [ -f "$WORK/ctl/$f" ]; then cp -p "$WORK/ctl/$f" "$2/DEBIAN/$f"; fi
    done
    rm -rf "$WORK/ctl"
}

# Write DEBIAN/control and md5sums, build the .deb into the pool. The environment
# carries the control fields: P V DEPENDS RECOMMENDS CONFLICTS REPLACES PROVIDES DESC.
pack() { # tree pool
    mkdir -p "$1/DEBIAN"
    size=$(du -sk --exclude=DEBIAN "$1" | cut -f1)
    {
        echo "Package: $P"
        echo "Version: $V"
        echo "Architecture: $ARCH"
        echo "Maintainer: $MAINTAINER"
        echo "Installed-Size: $size"
        [ -z "$DEPENDS" ] || echo "Depends: $DEPENDS"
        [ -z "${RECOMMENDS:-}" ] || echo "Recommends: $RECOMMENDS"
        [ -z "${CONFLICTS:-}" ] || echo "Conflicts: $CONFLICTS"
        [ -z "${REPLACES:-}" ] || echo "Replaces: $REPLACES"
        [ -z "${PROVIDES:-}" ] || echo "Provides: $PROVIDES"
        echo "Section: admin"
        echo "Priority: optional"
        echo "Homepage: https://www.docker.com"
        echo "Description: $DESC"
        echo " A stand-in for the package of this name in Docker's apt repository, made by"
        echo " the noticeboard test-bed from Debian's packages ($FROM),"
        echo " unchanged binaries under Docker's package name. For tests only."
    } >"$1/DEBIAN/control"
    (cd "$1" && find . -path ./DEBIAN -prune -o -type f -print | sed 's|^\./||' | sort |
        xargs -r md5sum) >"$1/DEBIAN/md5sums"
    # Uncompressed: the repository is only read over the test network, and squeezing
    # a few hundred MB of Go binaries was most of a cold build's time.
    dpkg-deb --root-owner-group -Znone -b "$1" "$2" >/dev/null
    log "  $P $V"
    unset P V DEPENDS RECOMMENDS CONFLICTS REPLACES PROVIDES DESC FROM
}

upstream_of() { echo "$1" | sed 's/^[0-9]*://; s/-[^-]*$//'; }

build_suite() { # release
    suite=$1
    release=$(candidate "$suite" base-files | cut -d. -f1)
    tag="+nbstandin~debian.$release~$suite"
    pool=$OUT/debian/dists/$suite/pool/stable/$ARCH
    mkdir -p "$pool"
    log "$suite: Debian $release"

    engine=$(fetch "$suite" docker.io)
    containerd=$(fetch "$suite" containerd)
    runc=$(fetch "$suite" runc)
    tini=$(fetch "$suite" tini)
    cli=""
    if [ -n "$(candidate "$suite" docker-cli)" ]; then cli=$(fetch "$suite" docker-cli); fi
    # Compose v2 and Buildx as CLI plugins: the release's own when it has them.
    plugins=$suite
    if [ -z "$(candidate "$suite" docker-buildx)" ] ||
        dpkg --compare-versions "$(candidate "$suite" docker-compose)" lt 2; then
        plugins=$PLUGIN_SUITE
    fi
    compose=$(fetch "$plugins" docker-compose)
    buildx=$(fetch "$plugins" docker-buildx)
    libc=$(upstream_of "$(candidate "$suite" libc6)")

    ev=$(dpkg-deb -f "$engine" Version)
    engine_deps=$(dpkg-deb -f "$engine" Depends)

    # containerd.io: containerd and runc in one package, as Docker ships them.
    t=$WORK/containerd.io
    unpack "$containerd" "$t" containerd.io
    unpack "$runc" "$t" containerd.io
    keep_scripts "$containerd" "$t"
    cv=$(dpkg-deb -f "$containerd" Version)
    P=containerd.io V="$cv$tag" FROM="containerd $cv, runc $(dpkg-deb -f "$runc" Version)" \
        DEPENDS=$(join_deps "$(deps_without "$(dpkg-deb -f "$containerd" Depends)" runc)" \
            "$(dpkg-deb -f "$runc" Depends)") \
        CONFLICTS="containerd, runc" REPLACES="containerd, runc" PROVIDES="containerd, runc" \
        DESC="open and reliable container runtime" pack "$t" "$pool"

    # docker-ce-cli: the docker command and its shell completions, from Debian's
    # docker-cli where the release has one (13), else split off docker.io (12).
    engine_tree=$WORK/docker-ce
    unpack "$engine" "$engine_tree" docker-ce
    t=$WORK/docker-ce-cli
    if [ -n "$cli" ]; then
        unpack "$cli" "$t" docker-ce-cli
        pfrom="docker-cli $(dpkg-deb -f "$cli" Version)"
    else
        mkdir -p "$t/usr/share/doc/docker-ce-cli"
        cp "$engine_tree/usr/share/doc/docker-ce"/copyright.* "$t/usr/share/doc/docker-ce-cli/"
        pfrom="docker.io $ev"
    fi
    for f in usr/bin/docker usr/share/bash-completion/completions/docker \
        usr/share/fish/vendor_completions.d/docker.fish usr/share/zsh/vendor-completions/_docker; do
        if [ -e "$engine_tree/$f" ]; then
            mkdir -p "$t/$(dirname "$f")"
            mv "$engine_tree/$f" "$t/$f"
        fi
    done
    P=docker-ce-cli V="5:$ev$tag" FROM=$pfrom \
        DEPENDS=$(libc_dep "$t") \
        CONFLICTS="docker (<< 1.5~), docker-engine, docker.io, docker-cli, podman-docker" \
        REPLACES="docker-engine, docker.io, docker-cli" \
        DESC="Docker CLI: the open-source application container engine" pack "$t" "$pool"

    # docker-ce: the daemon, docker-proxy, docker-init and the units and init script.
    t=$engine_tree
    keep_scripts "$engine" "$t"
    # A removed (not purged) docker.io leaves /etc/init.d/docker non-executable, and a
    # package that takes the conffile over keeps that mode: Debian's own snippets then
    # skip update-rc.d and the start, and sysvinit cannot start Docker. Make it
    # executable again before they look at it.
    awk 'done != 1 && /^set -e$/ {
            print
            print "if [ \"$1\" = configure ] && [ -f /etc/init.d/docker ]; then"
            print "    chmod 755 /etc/init.d/docker"
            print "fi"
            done = 1
            next
        } { print }' "$t/DEBIAN/postinst" >"$WORK/postinst"
    grep -q 'chmod 755 /etc/init.d/docker' "$WORK/postinst"
    cat "$WORK/postinst" >"$t/DEBIAN/postinst"
    # Debian links docker-init to tini's static binary; Docker ships the binary itself.
    dpkg-deb --fsys-tarfile "$tini" | tar -xO ./usr/bin/tini-static >"$t/usr/bin/docker-init.new"
    chmod 755 "$t/usr/bin/docker-init.new"
    rm -f "$t/usr/bin/docker-init"
    mv "$t/usr/bin/docker-init.new" "$t/usr/bin/docker-init"
    P=docker-ce V="5:$ev$tag" FROM="docker.io $ev, tini $(dpkg-deb -f "$tini" Version)" \
        DEPENDS=$(join_deps "containerd.io (>= 1.6)" "docker-ce-cli" \
            "$(deps_without "$engine_deps" containerd runc tini)") \
        RECOMMENDS="apparmor, ca-certificates, git, xz-utils" \
        CONFLICTS="docker (<< 1.5~), docker-engine, docker.io" \
        REPLACES="docker-engine, docker.io" \
        DESC="Docker: the open-source application container engine" pack "$t" "$pool"

    # The CLI plugins, alone in their packages (no /usr/bin/docker-compose: Docker's
    # plugin package has none, and Debian 12's Compose v1 owns that path).
    for kind in compose buildx; do
        if [ $kind = compose ]; then deb=$compose; else deb=$buildx; fi
        t=$WORK/docker-$kind-plugin
        unpack "$deb" "$t" "docker-$kind-plugin"
        rm -rf "${t:?}/usr/bin"
        need=$(glibc_needed "$t")
        if ! dpkg --compare-versions "$need" le "$libc"; then
            echo "docker-repo: docker-$kind from $plugins needs GLIBC_$need; $suite has $libc" >&2
            exit 1
        fi
        log "  glibc: docker-$kind ($plugins) needs GLIBC_$need, $suite has $libc: ok"
        pv=$(dpkg-deb -f "$deb" Version)
        if [ $kind = compose ]; then
            conflicts="docker-compose (>= 2~), docker-compose-v2"
            pdesc="Docker Compose (v2) plugin for the Docker CLI"
        else
            conflicts="docker-buildx"
            pdesc="Docker Buildx plugin for the Docker CLI"
        fi
        P=docker-$kind-plugin V="$pv$tag" FROM="$(dpkg-deb -f "$deb" Package) $pv of $plugins" \
            DEPENDS=$(libc_dep "$t") CONFLICTS=$conflicts REPLACES=$conflicts \
            DESC=$pdesc pack "$t" "$pool"
    done
    rm -rf "${WORK:?}"/docker-* "$WORK/containerd.io"

    # The index and its signatures, laid out as Docker's server has them.
    (
        cd "$OUT/debian"
        bin=dists/$suite/stable/binary-$ARCH
        mkdir -p "$bin"
        apt-ftparchive packages "dists/$suite/pool/stable/$ARCH" >"$bin/Packages"
        gzip -9nk "$bin/Packages"
        apt-ftparchive \
            -o APT::FTPArchive::Release::Origin=Docker \
            -o "APT::FTPArchive::Release::Label=Docker CE" \
            -o "APT::FTPArchive::Release::Suite=$suite" \
            -o "APT::FTPArchive::Release::Codename=$suite" \
            -o "APT::FTPArchive::Release::Architectures=$ARCH" \
            -o APT::FTPArchive::Release::Components=stable \
            -o "APT::FTPArchive::Release::Description=Stand-in for Docker CE packages for Debian $suite (noticeboard test-bed)" \
            release "dists/$suite" >"$WORK/Release"
        mv "$WORK/Release" "dists/$suite/Release"
        gpg --batch --yes --quiet --local-user "$KEY_UID" --clearsign \
            -o "dists/$suite/InRelease" "dists/$suite/Release"
        gpg --batch --yes --quiet --local-user "$KEY_UID" --armor --detach-sign \
            -o "dists/$suite/Release.gpg" "dists/$suite/Release"
    )
}

case "${1:-}" in
key)
    make_key
    ;;
build)
    make_key
    mkdir -p "$OUT/debian"
    cp "$GNUPGHOME/docker-repo.asc" "$OUT/debian/gpg"
    for suite in $SUITES; do build_suite "$suite"; done
    gpgconf --kill gpg-agent 2>/dev/null || true
    log "done: $OUT/debian"
    ;;
*)
    echo "usage: $0 key|build" >&2
    exit 2
    ;;
esac

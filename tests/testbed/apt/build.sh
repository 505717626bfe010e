#!/usr/bin/env bash
# Builds a GPG-signed flat apt repository of TEST STAND-INS for NVIDIA's container
# toolkit packages. Used only by sparkfleet's tests: our machines have no GPU and
# cannot reach NVIDIA's repository. The layout copies
# https://nvidia.github.io/libnvidia-container/ so roles consume it like the real one:
#
#   OUTDIR/libnvidia-container/gpgkey                       armored public key
#   OUTDIR/libnvidia-container/stable/deb/{amd64,arm64}/    *.deb Packages Packages.gz
#                                                           Release InRelease Release.gpg
#
# Usage: build.sh OUTDIR KEYDIR
#   KEYDIR is a GNUPGHOME; a passphrase-less ed25519 signing key is made there on
#   first use and reused afterwards, so clients keep trusting rebuilt repositories.
set -euo pipefail

readonly VERSIONS=(1.17.8-1 1.18.0-1)
readonly ARCHES=(amd64 arm64)
readonly KEY_UID="sparkfleet test stand-in apt repository <testbed@sparkfleet.invalid>"
readonly MAINTAINER="sparkfleet test bed <testbed@sparkfleet.invalid>"
# A fixed timestamp makes the .debs, and so Packages, byte-identical between builds.
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-1735689600}"
umask 022

if [[ $# -ne 2 ]]; then
    echo "usage: $0 OUTDIR KEYDIR" >&2
    exit 2
fi

missing=()
command -v dpkg-deb >/dev/null 2>&1 || missing+=(dpkg)
command -v apt-ftparchive >/dev/null 2>&1 || missing+=(apt-utils)
{ command -v gpg && command -v gpg-agent; } >/dev/null 2>&1 || missing+=(gnupg)
if ((${#missing[@]} > 0)); then
    echo "build.sh: missing tools; install them with: apt-get install -y ${missing[*]}" >&2
    exit 1
fi

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
mkdir -p "$1" "$2"
outdir=$(cd "$1" && pwd)
keydir=$(cd "$2" && pwd)
chmod 0700 "$keydir"
export GNUPGHOME="$keydir"
work=$(mktemp -d)
stage="$outdir/.libnvidia-container.build.$$"

cleanup() {
    # Signing starts a gpg-agent for KEYDIR; don't leave it behind.
    gpgconf --kill gpg-agent >/dev/null 2>&1 || true
    rm -rf "$work" "$stage"
}
trap cleanup EXIT

signing_key() {
    gpg --batch --with-colons --list-secret-keys 2>/dev/null |
        awk -F: '$1 == "fpr" && !seen++ { print $10 }'
}

fpr=$(signing_key || true)
if [[ -z $fpr ]]; then
    # gpg chats on stderr even when it works; show that only when it fails.
    if ! log=$(gpg --batch --passphrase '' \
        --quick-generate-key "$KEY_UID" ed25519 sign never 2>&1); then
        echo "$log" >&2
    fi
    fpr=$(signing_key || true)
fi
[[ -n $fpr ]] || { echo "build.sh: could not create a signing key in $keydir" >&2; exit 1; }

# make_deb DESTDIR NAME VERSION ARCH DEPENDS SUMMARY [SCRIPT...]
# SCRIPTs come from bin/ and land in /usr/bin with @VERSION@ filled in.
make_deb() {
    local dest=$1 name=$2 version=$3 arch=$4 depends=$5 summary=$6
    shift 6
    local root="$work/${name}_${version}_${arch}" script
    mkdir -p "$root/DEBIAN" "$root/usr/share/doc/$name"
    for script in "$@"; do
        mkdir -p "$root/usr/bin"
        sed "s/@VERSION@/${version%-*}/g" "$here/bin/$script" >"$root/usr/bin/$script"
        chmod 0755 "$root/usr/bin/$script"
    done
    cat >"$root/usr/share/doc/$name/README.test-stand-in" <<EOF
$name $version is a TEST STAND-IN built by sparkfleet's test bed
(tests/testbed/apt/build.sh). It is not NVIDIA software and does not
support any GPU; it only imitates the interface the provisioning roles use.
EOF
    {
        echo "Package: $name"
        echo "Version: $version"
        echo "Architecture: $arch"
        echo "Maintainer: $MAINTAINER"
        if [[ -n $depends ]]; then echo "Depends: $depends"; fi
        echo "Section: utils"
        echo "Priority: optional"
        echo "Description: TEST STAND-IN: $summary"
        echo " Not NVIDIA software. sparkfleet's test bed installs this in place of the"
        echo " real $name, which needs NVIDIA hardware."
    } >"$root/DEBIAN/control"
    find "$root" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
    dpkg-deb --root-owner-group -Zxz --threads-max=1 \
        --build "$root" "$dest/${name}_${version}_${arch}.deb" >/dev/null
}

sign() {
    gpg --batch --yes --quiet --local-user "$fpr" --digest-algo SHA512 "$@"
}

for arch in "${ARCHES[@]}"; do
    # Flat repository, like NVIDIA's: debs and indexes side by side, Suites: "/".
    repo="$stage/stable/deb/$arch"
    mkdir -p "$repo"
    for v in "${VERSIONS[@]}"; do
        make_deb "$repo" libnvidia-container1 "$v" "$arch" "" \
            "NVIDIA container runtime library"
        make_deb "$repo" libnvidia-container-tools "$v" "$arch" \
            "libnvidia-container1 (>= $v)" \
            "NVIDIA container runtime library (command-line tools)" nvidia-container-cli
        make_deb "$repo" nvidia-container-toolkit-base "$v" "$arch" "python3" \
            "NVIDIA Container Toolkit Base" nvidia-ctk nvidia-container-runtime
        make_deb "$repo" nvidia-container-toolkit "$v" "$arch" \
            "nvidia-container-toolkit-base (= $v), libnvidia-container-tools (>= $v), libnvidia-container-tools (<< 2.0.0), python3" \
            "NVIDIA Container toolkit" nvidia-container-runtime-hook
    done
    (cd "$repo" && apt-ftparchive packages . >Packages 2>/dev/null)
    gzip -9n <"$repo/Packages" >"$repo/Packages.gz"
    # Written outside the directory: apt-ftparchive would otherwise hash a half-written Release.
    (cd "$repo" && apt-ftparchive \
        -o APT::FTPArchive::Release::Origin="sparkfleet test stand-in" \
        -o APT::FTPArchive::Release::Label="sparkfleet test stand-in" \
        -o APT::FTPArchive::Release::Description="TEST STAND-IN for NVIDIA libnvidia-container stable/deb/$arch" \
        release .) >"$work/Release"
    mv "$work/Release" "$repo/Release"
    sign --clearsign --output "$repo/InRelease" "$repo/Release"
    sign --armor --detach-sign --output "$repo/Release.gpg" "$repo/Release"
done
gpg --batch --armor --export "$fpr" >"$stage/gpgkey"

# Built beside the old tree and swapped in by rename: a failed build leaves the
# previous repository intact, and a server on OUTDIR never serves half of one.
rm -rf "$outdir/libnvidia-container"
mv "$stage" "$outdir/libnvidia-container"
echo "build.sh: repository in $outdir/libnvidia-container (key $fpr)"

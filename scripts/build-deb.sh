#!/usr/bin/env bash
# Build the Debian/Ubuntu packages of moat, for the WireGuard server side (`moat companion`), from the static
# musl release builds.
#
#   scripts/build-deb.sh [--out DIR] [ARCH...]
#
# ARCH is a Debian architecture: amd64 (x86_64-unknown-linux-musl) or arm64 (aarch64-unknown-linux-musl);
# default both. Output: DIR/moat_<version>_<arch>.deb (DIR defaults to dist/), <version> from Cargo.toml.
#
# The binary is the one `scripts/cross.sh <target> build` makes, the same as in the router packages (cargo
# rebuilds only what changed). With MOAT_PREBUILT_DIR set (scripts/test.sh sets it after its build stage), the
# existing $MOAT_PREBUILT_DIR/<rust-target>/release/moat is packaged instead and nothing is built.
#
# Contents (packaging/debian/): /usr/bin/moat, /usr/lib/systemd/system/moat-companion.service (neither
# enabled nor started by the package), /etc/moat/companion (conffile: the two-line minimum),
# /usr/share/doc/moat/copyright; md5sums; maintainer scripts as dh_installsystemd --no-enable --no-start writes them.
# Built with `dpkg-deb --build --root-owner-group`: every file root:root, every mtime SOURCE_DATE_EPOCH
# (default: the commit time of HEAD), entries sorted by dpkg-deb: the same inputs give the same bytes.
# MOAT_DEB_MAINTAINER overrides the Maintainer field.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
pkgdir="$root/packaging/debian"

die() { echo "build-deb: $*" >&2; exit 1; }
# shellcheck source=SCRIPTDIR/package-lib.sh
source "$root/scripts/package-lib.sh"

# Debian architecture -> Rust target of the static build, and what `file` says about its machine.
rust_target() {
	case "$1" in
		amd64) echo x86_64-unknown-linux-musl ;;
		arm64) echo aarch64-unknown-linux-musl ;;
		*) return 1 ;;
	esac
}
elf_machine() {
	case "$1" in amd64) echo "x86-64" ;; arm64) echo "ARM aarch64" ;; esac
}
all_archs="amd64 arm64"

package_args 2,19 "$@"

command -v dpkg-deb >/dev/null || die "dpkg-deb is required (Debian package dpkg)"
command -v file >/dev/null || die "file is required (Debian package file)"

version=$(sed -n '/^\[package\]/,/^\[/s/^version *= *"\(.*\)"/\1/p' "$root/Cargo.toml")
[ -n "$version" ] || die "cannot read the version from Cargo.toml"
maintainer=${MOAT_DEB_MAINTAINER:-"moat maintainers <maintainers@users.noreply.r-seed-5388dd33.example>"}

source_date_epoch

build_one() {
	local arch=$1 target bin desc work data ctrl size pkg
	target=$(rust_target "$arch")
	if [ -n "${MOAT_PREBUILT_DIR:-}" ]; then
		bin="$MOAT_PREBUILT_DIR/$target/release/moat"
		[ -f "$bin" ] || die "no binary at $bin (MOAT_PREBUILT_DIR is set)"
	else
		bin=$("$root/scripts/cross.sh" "$target" build | tail -n1)
		[ -f "$bin" ] || die "scripts/cross.sh $target build left no binary at '$bin'"
	fi
	# cross.sh checked it when it built it; a prebuilt one may come from anywhere.
	desc=$(file -b "$bin")
	case "$desc" in "ELF 64-bit LSB "*", $(elf_machine "$arch"),"*) ;; *) die "$bin is not a $arch ELF: $desc" ;; esac
	case "$desc" in *"statically linked"* | *"static-pie linked"*) ;; *) die "$bin is not static: $desc" ;; esac

	work=$(mktemp -d)
	# shellcheck disable=SC2064 # expand now: $work is local
	trap "rm -rf '$work'" RETURN
	umask 022
	data="$work/root" ctrl="$work/root/DEBIAN"
	install -d -m0755 "$data/usr/bin" "$data/usr/lib/systemd/system" "$data/etc/moat" \
		"$data/usr/share/doc/moat" "$ctrl"
	install -m0755 "$bin" "$data/usr/bin/moat"
	install -m0644 "$pkgdir/moat-companion.service" "$data/usr/lib/systemd/system/moat-companion.service"
	install -m0644 "$pkgdir/companion" "$data/etc/moat/companion"
	install -m0644 "$pkgdir/copyright" "$data/usr/share/doc/moat/copyright"

	# Installed-Size as dpkg-gencontrol counts it: KiB per file, rounded up, and 1 per directory or link.
	size=$(cd "$data" && find . -path ./DEBIAN -prune -o ! -path . -printf '%y %s\n' |
		awk '$1 == "f" { n += int(($2 + 1023) / 1024) } $1 != "f" { n += 1 } END { print n + 0 }')
	sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@INSTALLED_SIZE@/$size/" \
		-e "s|@MAINTAINER@|$maintainer|" "$pkgdir/control" >"$ctrl/control"
	grep -q '@[A-Z_]*@' "$ctrl/control" && die "unfilled field in $pkgdir/control"
	echo /etc/moat/companion >"$ctrl/conffiles"
	# md5sums of every file but the conffile (dpkg keeps those in its status), as dh_md5sums writes it.
	(cd "$data" && find . -path ./DEBIAN -prune -o -path ./etc -prune -o -type f -printf '%P\n' | LC_ALL=C sort |
		xargs -d '\n' md5sum) >"$ctrl/md5sums"
	install -m0755 "$pkgdir/postinst" "$pkgdir/prerm" "$pkgdir/postrm" "$ctrl/"
	chmod 0644 "$ctrl/control" "$ctrl/conffiles" "$ctrl/md5sums"

	find "$data" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
	mkdir -p "$out"
	pkg="$out/moat_${version}_${arch}.deb"
	dpkg-deb --root-owner-group -Zxz --build "$data" "$pkg.tmp" >/dev/null
	mv -f "$pkg.tmp" "$pkg"
	printf '%s\t%s bytes\tInstalled-Size %s KiB\n' "$pkg" "$(stat -c %s "$pkg")" "$size"
}

for arch in "${archs[@]}"; do
	build_one "$arch"
done

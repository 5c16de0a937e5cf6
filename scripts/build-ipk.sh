#!/usr/bin/env bash
# Build OpenWrt .ipk packages of moat from the static cross builds, without the SDK.
#
#   scripts/build-ipk.sh [--out DIR] [ARCH...]
#
# ARCH is an OpenWrt package architecture (default: all of them):
#   mips_24kc mipsel_24kc aarch64_cortex-a53 aarch64_generic arm_cortex-a7_neon-vfpv4 x86_64
# Output: DIR/moat_<version>-r<release>_<arch>.ipk (DIR defaults to dist/).
#
# The binary for each arch is the static cross build made by
# `scripts/cross.sh <rust-target> build` (cargo rebuilds only what changed, so an
# up-to-date binary costs seconds). With MOAT_PREBUILT_DIR set (scripts/test.sh
# sets it after its build stage), the existing
# $MOAT_PREBUILT_DIR/<rust-target>/release/moat is used instead and nothing is built.
#
# The layout follows OpenWrt's scripts/ipkg-build: a gzip'd tar holding
# ./debian-binary, ./data.tar.gz and ./control.tar.gz (in that order); every tar
# is GNU format, entries sorted by name, owner root:root (0/0), every mtime
# SOURCE_DATE_EPOCH (default: the commit time of HEAD), gzip -n. The same inputs
# give the same bytes. Version, release, license, section, dependencies,
# description and postinst/prerm come from openwrt/moat/Makefile (the SDK feed
# package), so both ways of building agree.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
makefile="$root/openwrt/moat/Makefile"
files="$root/openwrt/moat/files"

die() { echo "build-ipk: $*" >&2; exit 1; }
# shellcheck source=SCRIPTDIR/package-lib.sh
source "$root/scripts/package-lib.sh"

# OpenWrt package architecture -> Rust target of the static build.
rust_target() {
	case "$1" in
		mips_24kc) echo mips-unknown-linux-musl ;;
		mipsel_24kc) echo mipsel-unknown-linux-musl ;;
		aarch64_cortex-a53|aarch64_generic) echo aarch64-unknown-linux-musl ;;
		arm_cortex-a7_neon-vfpv4) echo armv7-unknown-linux-musleabihf ;;
		x86_64) echo x86_64-unknown-linux-musl ;;
		*) return 1 ;;
	esac
}
all_archs="mips_24kc mipsel_24kc aarch64_cortex-a53 aarch64_generic arm_cortex-a7_neon-vfpv4 x86_64"

package_args 2,20 "$@"

tar --version 2>/dev/null | grep -q 'GNU tar' || die "GNU tar is required"

# --- package metadata from the feed Makefile ---------------------------------
mk_var() { sed -n "s/^$1:=//p" "$makefile" | head -n1; }
# Body of `define <name>` … `endef`, with make's `$$` turned back into `$`.
mk_define() {
	awk -v name="$1" '$0 == "define " name { on = 1; next } on && $0 == "endef" { exit } on { print }' \
		"$makefile" | sed 's/\$\$/$/g'
}
pkg_version=$(mk_var PKG_VERSION)
pkg_release=$(mk_var PKG_RELEASE)
license=$(mk_var PKG_LICENSE)
section=$(mk_define Package/moat | sed -n 's/^ *SECTION:=//p')
# Build-time conditions ($(...), @...) are not package dependencies; `+pkg` is.
depends=$(mk_define Package/moat | sed -n 's/^ *DEPENDS:=//p' | tr ' ' '\n' |
	sed -n 's/^+\([A-Za-z0-9._-]*\)$/\1/p' | paste -sd, - | sed 's/,/, /g')
description=$(mk_define Package/moat/description)
[ -n "$pkg_version" ] && [ -n "$pkg_release" ] && [ -n "$license" ] && [ -n "$section" ] &&
	[ -n "$depends" ] && [ -n "$description" ] || die "cannot read the package metadata from $makefile"

cargo_version=$(sed -n '/^\[package\]/,/^\[/s/^version *= *"\(.*\)"/\1/p' "$root/Cargo.toml")
[ "$pkg_version" = "$cargo_version" ] ||
	die "PKG_VERSION $pkg_version in $makefile differs from version $cargo_version in Cargo.toml"
version="$pkg_version-r$pkg_release"

source_date_epoch

# --- one package --------------------------------------------------------------
# Deterministic tar of the current directory's listed members, gzip'd to stdout.
build_one() {
	local arch=$1 target bin work pkg installed_size
	target=$(rust_target "$arch")
	if [ -n "${MOAT_PREBUILT_DIR:-}" ]; then
		bin="$MOAT_PREBUILT_DIR/$target/release/moat"
		[ -f "$bin" ] || die "no binary at $bin (MOAT_PREBUILT_DIR is set)"
	else
		[ -x "$root/scripts/cross.sh" ] || die "scripts/cross.sh (the static cross build) is missing"
		# cargo rebuilds only what changed: a no-op when the binary is up to date.
		bin=$("$root/scripts/cross.sh" "$target" build | tail -n1)
		[ -f "$bin" ] || die "scripts/cross.sh $target build left no binary at '$bin'"
	fi

	work=$(mktemp -d)
	trap 'rm -rf "$work"' RETURN
	umask 022
	local data="$work/data" ctrl="$work/control"
	mkdir -p "$data" "$ctrl"

	# The same files, modes and places as Package/moat/install in the Makefile
	# (INSTALL_BIN 0755, INSTALL_CONF 0600, INSTALL_DATA 0644, dirs 0755).
	install -d -m0755 "$data/usr/sbin" "$data/etc/config" "$data/etc/init.d" \
		"$data/etc/hotplug.d/iface" "$data/etc/uci-defaults" "$data/etc/capabilities"
	install -m0755 "$bin" "$data/usr/sbin/moat"
	install -m0600 "$files/moat.config" "$data/etc/config/moat"
	install -m0755 "$files/moat.init" "$data/etc/init.d/moat"
	install -m0644 "$files/moat.hotplug" "$data/etc/hotplug.d/iface/70-moat"
	install -m0755 "$files/moat.uci-defaults" "$data/etc/uci-defaults/90-moat"
	install -m0644 "$files/moat.capabilities.json" "$data/etc/capabilities/moat.json"
	chmod 0755 "$data"

	(cd "$data" && det_tar .) >"$work/data.tar.gz"
	# Installed-Size as ipkg-build computes it: the size of the uncompressed data tar.
	installed_size=$(gzip -dc "$work/data.tar.gz" | wc -c)

	{
		echo "Package: moat"
		echo "Version: $version"
		echo "Depends: $depends"
		echo "Source: feeds/moat/moat"
		echo "SourceName: moat"
		echo "License: $license"
		echo "Section: $section"
		echo "SourceDateEpoch: $SOURCE_DATE_EPOCH"
		echo "Architecture: $arch"
		echo "Installed-Size: $installed_size"
		printf 'Description: '
		printf '%s\n' "$description" | sed -e 's,^[[:space:]]*, ,'
	} >"$ctrl/control"
	echo "/etc/config/moat" >"$ctrl/conffiles"
	# The generic maintainer scripts OpenWrt puts in every package; they call
	# default_postinst/default_prerm from /lib/functions.sh, which run the
	# package's own postinst-pkg/prerm-pkg.
	cat >"$ctrl/postinst" <<'EOS'
#!/bin/sh
[ "${IPKG_NO_SCRIPT}" = "1" ] && exit 0
[ -s ${IPKG_INSTROOT}/lib/functions.sh ] || exit 0
. ${IPKG_INSTROOT}/lib/functions.sh
default_postinst $0 $@
EOS
	cat >"$ctrl/prerm" <<'EOS'
#!/bin/sh
[ -s ${IPKG_INSTROOT}/lib/functions.sh ] || exit 0
. ${IPKG_INSTROOT}/lib/functions.sh
default_prerm $0 $@
EOS
	mk_define Package/moat/postinst >"$ctrl/postinst-pkg"
	mk_define Package/moat/prerm >"$ctrl/prerm-pkg"
	mk_define Package/moat/postrm >"$ctrl/postrm"
	chmod 0644 "$ctrl/control" "$ctrl/conffiles"
	chmod 0755 "$ctrl/postinst" "$ctrl/prerm" "$ctrl/postinst-pkg" "$ctrl/prerm-pkg" "$ctrl/postrm" "$ctrl"
	(cd "$ctrl" && det_tar .) >"$work/control.tar.gz"

	printf '2.0\n' >"$work/debian-binary"
	chmod 0644 "$work/debian-binary" "$work/data.tar.gz" "$work/control.tar.gz"
	mkdir -p "$out"
	pkg="$out/moat_${version}_${arch}.ipk"
	(cd "$work" && det_tar ./debian-binary ./data.tar.gz ./control.tar.gz) >"$pkg.tmp"
	mv -f "$pkg.tmp" "$pkg"
	printf '%s\t%s bytes\tInstalled-Size %s\n' "$pkg" "$(wc -c <"$pkg")" "$installed_size"
}

for arch in "${archs[@]}"; do
	build_one "$arch"
done

# The LuCI app (arch all) with the same version, next to the daemon packages.
"$root/scripts/build-luci-ipk.sh" --out "$out"

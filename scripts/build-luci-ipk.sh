#!/usr/bin/env bash
# Build luci-app-moat_<version>_all.ipk (Depends: moat, luci-base) from openwrt/luci-app-moat/, without the SDK.
#
#   scripts/build-luci-ipk.sh [--out DIR]      (DIR defaults to dist/)
#
# The same layout as scripts/build-ipk.sh (ipkg-build's: a gzip'd GNU tar of ./debian-binary, ./data.tar.gz,
# ./control.tar.gz; entries sorted, root:root, mtime SOURCE_DATE_EPOCH, gzip -n: same inputs, same bytes) and
# the places luci.mk installs an app's files: htdocs/ under /www, root/ under /. The version is moat's
# (openwrt/moat/Makefile), so the app and the daemon it talks to are released together.
# scripts/build-ipk.sh calls this at its end.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
app="$root/openwrt/luci-app-moat"
makefile="$root/openwrt/moat/Makefile"
die() { echo "build-luci-ipk: $*" >&2; exit 1; }
# shellcheck source=SCRIPTDIR/package-lib.sh
source "$root/scripts/package-lib.sh"

out="$root/dist"
while [ $# -gt 0 ]; do
	case "$1" in
		--out) [ $# -ge 2 ] || die "--out needs a directory"; out=$2; shift 2 ;;
		--out=*) out=${1#--out=}; shift ;;
		*) die "unknown argument $1" ;;
	esac
done
tar --version 2>/dev/null | grep -q 'GNU tar' || die "GNU tar is required"
ver=$(sed -n 's/^PKG_VERSION:=//p' "$makefile" | head -n1)
rel=$(sed -n 's/^PKG_RELEASE:=//p' "$makefile" | head -n1)
[ -n "$ver" ] && [ -n "$rel" ] || die "cannot read PKG_VERSION/PKG_RELEASE from $makefile"
version="$ver-r$rel"
source_date_epoch

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
umask 022
data="$work/data" ctrl="$work/control"
mkdir -p "$data/www" "$ctrl"
cp -R "$app/htdocs/." "$data/www/"
cp -R "$app/root/." "$data/"
find "$data" -type d -exec chmod 0755 {} +
find "$data" -type f -exec chmod 0644 {} +
chmod 0755 "$data/usr/libexec/rpcd/luci.moat"
(cd "$data" && det_tar .) >"$work/data.tar.gz"
installed_size=$(gzip -dc "$work/data.tar.gz" | wc -c)
{
	echo "Package: luci-app-moat"
	echo "Version: $version"
	echo "Depends: libc, moat, luci-base"
	echo "Source: feeds/luci/applications/luci-app-moat"
	echo "SourceName: luci-app-moat"
	echo "License: GPL-2.0-only"
	echo "Section: luci"
	echo "SourceDateEpoch: $SOURCE_DATE_EPOCH"
	echo "Architecture: all"
	echo "Installed-Size: $installed_size"
	echo "Description:  LuCI support for moat: devices (discovery, protect in three clicks), tunnels and shapers, live status"
} >"$ctrl/control"
# As luci.mk's default postinst: drop LuCI's caches and reload rpcd so the new menu, ACL and plugin are seen.
cat >"$ctrl/postinst" <<'EOS'
#!/bin/sh
[ -n "${IPKG_INSTROOT}" ] && exit 0
rm -f /tmp/luci-indexcache /tmp/luci-indexcache.*
rm -rf /tmp/luci-modulecache/
/etc/init.d/rpcd reload 2>/dev/null
exit 0
EOS
chmod 0644 "$ctrl/control"
chmod 0755 "$ctrl/postinst" "$ctrl"
(cd "$ctrl" && det_tar .) >"$work/control.tar.gz"
printf '2.0\n' >"$work/debian-binary"
chmod 0644 "$work/debian-binary" "$work/data.tar.gz" "$work/control.tar.gz"
mkdir -p "$out"
pkg="$out/luci-app-moat_${version}_all.ipk"
(cd "$work" && det_tar ./debian-binary ./data.tar.gz ./control.tar.gz) >"$pkg.tmp"
mv -f "$pkg.tmp" "$pkg"
printf '%s\t%s bytes\tInstalled-Size %s\n' "$pkg" "$(wc -c <"$pkg")" "$installed_size"

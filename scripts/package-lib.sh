# shellcheck shell=bash
# shellcheck disable=SC2034,SC2154 # root, all_archs come from the caller; out, archs are for it
# What the package builders share (sourced by scripts/build-ipk.sh, build-luci-ipk.sh, build-deb.sh).
# The caller defines die() (and, for package_args, rust_target() and $all_archs) and $root.

# package_args HELP_LINES "$@": --out DIR | --out=DIR | -h (prints lines HELP_LINES of the caller's header) |
# ARCH...; sets $out (default $root/dist) and $archs (default every arch in $all_archs), each ARCH checked by
# rust_target.
package_args() {
	local help=$1
	shift
	out="$root/dist"
	archs=()
	while [ $# -gt 0 ]; do
		case "$1" in
			--out) [ $# -ge 2 ] || die "--out needs a directory"; out=$2; shift 2 ;;
			--out=*) out=${1#--out=}; shift ;;
			-h | --help) sed -n "${help}p" "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
			-*) die "unknown option $1" ;;
			*) rust_target "$1" >/dev/null || die "unknown architecture '$1' (known: $all_archs)"
				archs+=("$1"); shift ;;
		esac
	done
	[ ${#archs[@]} -gt 0 ] || read -r -a archs <<<"$all_archs"
}

# SOURCE_DATE_EPOCH: as given, else the commit time of HEAD; a number of seconds; exported.
source_date_epoch() {
	if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
		SOURCE_DATE_EPOCH=$(git -C "$root" log -1 --format=%ct 2>/dev/null) ||
			die "SOURCE_DATE_EPOCH is not set and $root is not a git checkout"
	fi
	case "$SOURCE_DATE_EPOCH" in '' | *[!0-9]*) die "SOURCE_DATE_EPOCH must be a number of seconds" ;; esac
	export SOURCE_DATE_EPOCH
}

# det_tar PATH...: a reproducible gzip'd tar on stdout (GNU format, sorted, root:root, every mtime
# SOURCE_DATE_EPOCH, gzip -n), as OpenWrt's ipkg-build makes them.
det_tar() {
	tar --format=gnu --sort=name --owner=root:0 --group=root:0 \
		--mtime="@$SOURCE_DATE_EPOCH" -cf - "$@" | gzip -n
}

#!/usr/bin/env bash
# Install what the moat lab needs (network namespaces lab: tests/lab/, scripts/lab.sh, scripts/bench-routing.sh).
# Sourced or run; installs only missing tools. Debian/Ubuntu (apt). Needs root.
set -euo pipefail

# command -> Debian package
LAB_TOOLS=(
  "nft:nftables"
  "ip:iproute2"
  "iptables:iptables"
  "wireguard-go:wireguard-go"
  "wg:wireguard-tools"
  "tor:tor"
  "tcpdump:tcpdump"
  "dig:dnsutils"
  "ping:iputils-ping"
  "sysctl:procps"
  "ps:procps"
)

lab_missing_packages() {
  local t pkgs=()
  for t in "${LAB_TOOLS[@]}"; do
    command -v "${t%%:*}" >/dev/null 2>&1 || pkgs+=("${t##*:}")
  done
  printf '%s\n' "${pkgs[@]}" | sort -u | grep -v '^$' || true
}

lab_install_deps() {
  local pkgs
  pkgs=$(lab_missing_packages)
  [ -z "$pkgs" ] && return 0
  echo "lab: installing: $(echo $pkgs)" >&2
  # Installing tor must not start the system tor service (it would contact the real Tor network):
  # keep services from starting during the install when no policy exists.
  local policy=/usr/sbin/policy-rc.d made_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod +x "$policy"; made_policy=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $pkgs
  [ "$made_policy" = 1 ] && rm -f "$policy"
  # If a service manager started tor anyway, stop it: the lab runs its own tor inside a namespace.
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet tor 2>/dev/null; then
    systemctl disable --now tor >/dev/null 2>&1 || true
  fi
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  lab_install_deps
fi

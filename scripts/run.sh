#!/usr/bin/env bash
# Installs what is missing (scripts/setup.sh), builds, and serves the FRS v2 API on 127.0.0.1:8080.
# Extra arguments go to `frs serve` (e.g. --listen 0.0.0.0:8080, --config frs.toml).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec target/release/frs serve "$@"

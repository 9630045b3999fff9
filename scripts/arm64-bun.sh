#!/usr/bin/env bash
# Fetch Bun's linux-arm64 build (the same version as the devDependency) for the arm64 tests, which run it under
# qemu-user with Debian's arm64 cross libraries as its root (packages: qemu-user-static libc6-arm64-cross
# libstdc++6-arm64-cross libgcc-s1-arm64-cross). Prints the path of the arm64 bun.
set -euo pipefail
cd "$(dirname "$0")/.."
version=$(node -p 'require("./node_modules/bun/package.json").version')
dir=node_modules/.cache/fdbroker-arm64/$version
if [[ ! -x $dir/package/bin/bun ]]; then
  mkdir -p "$dir"
  tarball=$(cd "$dir" && npm pack --silent "@oven/bun-linux-aarch64@$version")
  tar -xzf "$dir/$tarball" -C "$dir"
  rm -f "$dir/$tarball"
fi
echo "$PWD/$dir/package/bin/bun"

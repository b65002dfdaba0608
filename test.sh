#!/usr/bin/env bash
# Runs every test: go vet, then the whole module with the race detector.
# The C interoperability test (interop/) needs a C compiler, libsodium-dev,
# libnng-dev and libgmp-dev, and the shared replay store tests a
# redis-server binary; as root with apt-get available, missing ones are
# installed first, otherwise those tests skip and say so (unless
# SECSOCK_REQUIRE_REDIS=1, which CI sets: then the Redis tests fail).
set -euo pipefail
cd "$(dirname "$0")"
need=()
for pkg in libsodium-dev libnng-dev libgmp-dev redis-server; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "test.sh: installing ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends gcc libc6-dev "${need[@]}" >/dev/null
fi
go vet ./...
go test -race -count=1 ./...

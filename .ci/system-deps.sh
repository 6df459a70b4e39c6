#!/usr/bin/env bash
# System packages some tests need: a headless Chromium for the HTML reports and a
# Prometheus server (with promtool) for the usage-history tests.
# Installed with apt-get when we are root; otherwise those tests skip with a
# reason, except under CI=true where a missing package fails the suite.
set -uo pipefail
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
{ command -v prometheus && command -v promtool; } >/dev/null 2>&1 || need+=(prometheus)
if [ ${#need[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing system packages: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  exit $?
fi
echo "note: missing system packages (${need[*]}); run as root or install them;" \
     "tests that need them will be skipped (they fail under CI=true)" >&2
exit 0

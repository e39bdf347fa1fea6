#!/usr/bin/env bash
# Installs Debian's Chromium, the headless browser `courier console`'s
# browser test drives through the DevTools protocol, and prints the path
# the test reads. Idempotent: does nothing when Chromium is installed.
# Needs root to install.
#
#   scripts/services/chromium.sh
#   export COURIER_CHROMIUM=/usr/bin/chromium
#
# Without COURIER_CHROMIUM the test looks for chromium, chromium-browser,
# google-chrome and headless-shell on PATH.
set -euo pipefail

bin=$(command -v chromium || true)
if [[ -z $bin ]]; then
	if [[ $(id -u) != 0 ]]; then
		echo "chromium is missing: run this script as root (apt-get install chromium)" >&2
		exit 1
	fi
	apt-get -o DPkg::Lock::Timeout=300 update -qq
	DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq \
		--no-install-recommends chromium fonts-dejavu-core >/dev/null
	bin=$(command -v chromium)
fi
echo "COURIER_CHROMIUM=$bin ($("$bin" --version 2>/dev/null || echo 'version unknown'))"

#!/usr/bin/env bash
# Installs the API tools that apispec's tests run against the documents it
# writes: the AsyncAPI project's parser (@asyncapi/parser), Redocly's
# OpenAPI linter (@redocly/cli) and buf (@bufbuild/buf), from npm, pinned,
# into one directory. Idempotent. Needs node 20.19 or later and npm;
# as root it installs them (the Debian packages) when node is missing.
#
#   scripts/services/apitools.sh
#   export COURIER_API_TOOLS=/opt/courier-api-tools
#
# COURIER_API_TOOLS, if set, names the directory to install into.
set -euo pipefail

dir=${COURIER_API_TOOLS:-/opt/courier-api-tools}
packages=(
	@asyncapi/parser@3.6.6
	@redocly/cli@2.77.0
	@bufbuild/buf@1.75.0
)

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
	if [[ $(id -u) != 0 ]]; then
		echo "node and npm are missing: install Node.js 20.19 or later" >&2
		exit 1
	fi
	apt-get -o DPkg::Lock::Timeout=300 update -qq
	DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq nodejs npm >/dev/null
fi

installed() { # package@version
	local name=${1%@*} version=${1##*@}
	[[ -f $dir/node_modules/$name/package.json ]] &&
		node -e 'process.exit(require(process.argv[1]).version === process.argv[2] ? 0 : 1)' \
			"$dir/node_modules/$name/package.json" "$version"
}

missing=()
for p in "${packages[@]}"; do
	installed "$p" || missing+=("$p")
done
if ((${#missing[@]} > 0)); then
	mkdir -p "$dir"
	[[ -f $dir/package.json ]] || echo '{"private": true}' >"$dir/package.json"
	npm install --prefix "$dir" --no-audit --no-fund --loglevel=error "${packages[@]}"
fi
echo "COURIER_API_TOOLS=$dir (node $(node --version))"

# tools/common.sh: shared by ./run-tests, ./run-demo and .ci/run (sourced, not run).
#
# Finds the PostgreSQL to build against, installs missing Debian packages (as root), builds
# with warnings as errors and installs, and runs commands as an unprivileged user on a copy
# of the tree that this user can write (PostgreSQL refuses to run as root).

S2S_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

log() { printf '\n==> %s\n' "$*"; }

as_root() {
	if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

# Debian packages the build, the tests and the demo need: for major version $1, or else
# PG_CONFIG's (pg_auto_failover's build for that version, for the failover test 071;
# prometheus-postgres-exporter for the monitoring test 072). S2S_NO_BROWSER=1 leaves out
# the browser journeys' chromium and node (the roots of tools/pg-root.sh run them on the
# host only).
s2s_packages() {
	local major=${1:-}
	[ -n "$major" ] || major=$("${PG_CONFIG:-pg_config}" --version 2>/dev/null | sed -E 's/^PostgreSQL ([0-9]+).*/\1/')
	[ -n "$major" ] || major=15
	echo "make gcc postgresql-$major postgresql-server-dev-$major libcurl4-openssl-dev" \
		"libipc-run-perl python3 procps curl ca-certificates libmicrohttpd-dev libpq-dev" \
		"postgresql-$major-auto-failover prometheus-postgres-exporter"
	# JIT, which TAP 055 checks the worker never uses, has a package of its own from 18 on
	[ "$major" -lt 18 ] || echo "postgresql-$major-jit"
	[ -n "${S2S_NO_BROWSER:-}" ] || echo "chromium nodejs $(command -v npm >/dev/null || echo npm)"
}

# Installs what is missing (quietly; apt-get update first, as a fresh machine needs).
ensure_packages() {
	local missing=() p
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	log "installing Debian packages: ${missing[*]}"
	as_root apt-get update -qq
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

find_pg_config() {
	if [ -z "${PG_CONFIG:-}" ]; then
		if command -v pg_config >/dev/null; then PG_CONFIG=$(command -v pg_config)
		else PG_CONFIG=$(ls -d /usr/lib/postgresql/*/bin/pg_config 2>/dev/null | sort -V | tail -n 1); fi
	fi
	export PG_CONFIG
}

build_and_install() {
	log "building with warnings as errors (PG_CONFIG=$PG_CONFIG)"
	make -C "$S2S_TOP" -s PG_CONFIG="$PG_CONFIG" WERROR=1 all
	log "installing the extension"
	as_root make -C "$S2S_TOP" -s PG_CONFIG="$PG_CONFIG" install
}

# The user PostgreSQL runs as in tests: the caller, or "postgres" when the caller is root.
test_user() {
	if [ "$(id -u)" = 0 ]; then echo postgres; else id -un; fi
}

as_test_user() {
	if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# Copies the tree to a fresh directory the test user owns; prints its path.
writable_copy() {
	local dir
	dir=$(mktemp -d /tmp/s2s_tracking.XXXXXX)
	tar -C "$S2S_TOP" --exclude=.git --exclude=node_modules -cf - . | tar -C "$dir" -xf -
	[ "$(id -u)" = 0 ] && chown -R postgres: "$dir"
	chmod 755 "$dir"
	echo "$dir"
}

# The extension's version: the control file's default_version, its only source (the
# Makefile derives EXTVERSION and the C code's S2S_VERSION from it).
s2s_version() {
	sed -nE "s/^default_version *= *'([^']+)'.*/\1/p" "$S2S_TOP/s2s_tracking.control"
}

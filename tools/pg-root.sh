# tools/pg-root.sh: Debian roots for the PostgreSQL versions the host has no package for
# (sourced by ./run-tests, .ci/run and test/bench/orders_trigger.sh after tools/common.sh;
# needs root).
#
#   17  Debian 13 "trixie"     postgresql-17, postgresql-server-dev-17
#   18  Debian unstable "sid"  postgresql-18, postgresql-server-dev-18
#
# A root is made once with debootstrap from Debian's archive (nothing else is downloaded)
# under S2S_ROOTS (default /var/cache/s2s_tracking/roots/NN), and completed idempotently:
# the packages the suites need are installed when the list recorded in the root differs.
# Commands run in it through pg_root_exec: in a private mount namespace (so that no mount
# ever outlives the command, whatever happens to it) with /proc and a fresh /dev/shm
# (PostgreSQL's dynamic shared memory) mounted, and unmounted again on the way out. One
# command at a time per root (a lock): each run installs its build of the extension there.

S2S_ROOTS=${S2S_ROOTS:-/var/cache/s2s_tracking/roots}
S2S_MIRROR=${S2S_MIRROR:-http://deb.debian.org/debian}

# The Debian suite that packages a PostgreSQL major version; fails for any other version.
pg_root_suite() {
	case "$1" in
	17) echo trixie ;;
	18) echo sid ;;
	*) return 1 ;;
	esac
}

pg_root_dir() { echo "$S2S_ROOTS/$1"; }

# Runs a command inside the root of major version $1, as root, with a clean environment
# (the host's PG_CONFIG and friends mean nothing there) plus the variables given as
# NAME=VALUE before the command:  pg_root_exec 17 [NAME=VALUE...] CMD [ARG...]
pg_root_exec() {
	local dir
	dir=$(pg_root_dir "$1")
	shift
	unshare --mount --propagation private bash -c '
		d=$1; shift
		trap "umount \"\$d/dev/shm\" 2>/dev/null; umount \"\$d/proc\" 2>/dev/null" EXIT
		mount -t proc proc "$d/proc" || exit 1
		mount -t tmpfs -o mode=1777,size=1g s2s_shm "$d/dev/shm" || exit 1
		chroot "$d" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
			HOME=/root LANG=C.UTF-8 TERM=dumb DEBIAN_FRONTEND=noninteractive "$@"
	' pg_root "$dir" "$@"
}

# apt-get inside the root; sid's Release file may be past its validity date.
pg_root_apt() {
	local major=$1
	shift
	local opts=()
	[ "$(pg_root_suite "$major")" = sid ] && opts=(-o Acquire::Check-Valid-Until=false)
	pg_root_exec "$major" apt-get "${opts[@]}" -q "$@"
}

# Makes the root of major version $1 when missing and installs what the suites need (the
# same list as on the host, without the browser: chromium and node run on the host only).
pg_root_ensure() {
	local major=$1 suite dir want
	suite=$(pg_root_suite "$major") || { echo "no Debian root known for PostgreSQL $major (17 and 18 are)" >&2; return 1; }
	dir=$(pg_root_dir "$major")
	if [ -d "$dir/debootstrap" ]; then
		# debootstrap keeps this directory until it has finished: an interrupted run
		echo "$dir is an unfinished debootstrap (still running, or interrupted: remove the directory)" >&2
		return 1
	fi
	if [ ! -x "$dir/usr/bin/apt-get" ]; then
		command -v debootstrap >/dev/null || ensure_packages debootstrap || return 1
		log "making the PostgreSQL $major root: debootstrap $suite into $dir (a few minutes)"
		mkdir -p "$S2S_ROOTS"
		debootstrap --variant=minbase "$suite" "$dir" "$S2S_MIRROR" >"$S2S_ROOTS/debootstrap-$major.log" 2>&1 ||
			{ tail -n 20 "$S2S_ROOTS/debootstrap-$major.log" >&2; return 1; }
	fi
	want=$(S2S_NO_BROWSER=1 s2s_packages "$major")
	[ "$(cat "$dir/etc/s2s_tracking-packages" 2>/dev/null)" = "$want" ] && return 0
	log "installing into the PostgreSQL $major root: $want"
	# no service starts in a root; no "main" cluster: tests make their own
	printf '#!/bin/sh\nexit 101\n' >"$dir/usr/sbin/policy-rc.d"
	chmod 755 "$dir/usr/sbin/policy-rc.d"
	mkdir -p "$dir/etc/postgresql-common/createcluster.d"
	echo 'create_main_cluster = false' >"$dir/etc/postgresql-common/createcluster.d/s2s_tracking.conf"
	pg_root_apt "$major" update -qq || return 1
	# shellcheck disable=SC2086
	pg_root_apt "$major" install -y -qq --no-install-recommends $want >"$S2S_ROOTS/apt-$major.log" 2>&1 ||
		{ tail -n 30 "$S2S_ROOTS/apt-$major.log" >&2; return 1; }
	echo "$want" >"$dir/etc/s2s_tracking-packages"
}

# Copies this tree (sources only: the host's objects are for another server) into the
# root's /usr/src; prints the path inside the root.
pg_root_copy_tree() {
	local major=$1 dir inside
	dir=$(pg_root_dir "$major")
	mkdir -p "$dir/usr/src"
	inside=$(mktemp -d "$dir/usr/src/s2s_tracking.XXXXXX") || return 1
	tar -C "$S2S_TOP" --exclude=.git --exclude=node_modules --exclude='*.o' --exclude='*.so' \
		--exclude='*.bc' --exclude='./tmp_check*' --exclude=./results --exclude=./output_iso \
		--exclude=./test/shop/shop -cf - . | tar -C "$inside" -xf - || return 1
	chmod 755 "$inside"
	echo "${inside#"$dir"}"
}

# Runs CMD [ARG...] as root in a fresh copy of this tree inside the root of major version
# $1 (made or completed first), from the copy's top, with that version's PG_CONFIG,
# S2S_NO_BROWSER=1, and those of the caller's variables that tune the tests (TAP=,
# PG_TEST_*, S2S_*) or whose names match the extended regular expression S2S_ROOT_PASS.
# The copy is removed afterwards; the command's status is returned.
pg_root_run() {
	local major=$1 inside rc v pass=()
	shift
	pg_root_lock "$major" || return 1
	if ! pg_root_ensure "$major" || ! inside=$(pg_root_copy_tree "$major"); then
		pg_root_unlock
		return 1
	fi
	while IFS= read -r v; do pass+=("$v"); done < <(env |
		grep -E "^(TAP|PROVE_TESTS|PG_TEST_[A-Z_]+|S2S_[A-Z0-9_]+${S2S_ROOT_PASS:+|$S2S_ROOT_PASS})=" |
		grep -vE '^S2S_(ROOTS|MIRROR|ROOT_PASS)=')
	pg_root_exec "$major" "${pass[@]}" PG_CONFIG="/usr/lib/postgresql/$major/bin/pg_config" \
		S2S_NO_BROWSER=1 bash -c 'cd "$1" && shift && { make -s clean >/dev/null 2>&1; "$@"; }' \
		pg_root "$inside" "$@"
	rc=$?
	pg_root_unlock
	rm -rf --one-file-system "$(pg_root_dir "$major")$inside"
	return $rc
}

# Takes the root's lock (fd 9 of the caller's shell), waiting up to an hour.
pg_root_lock() {
	mkdir -p "$S2S_ROOTS"
	exec 9>"$S2S_ROOTS/$1.lock"
	flock -w 3600 9 || { echo "the PostgreSQL $1 root stays busy" >&2; return 1; }
}

pg_root_unlock() { exec 9>&-; }

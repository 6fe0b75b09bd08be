# shellcheck shell=bash
# Shared helpers for scripts/deps, scripts/stack, scripts/migrate and scripts/atrium.
#
# Sourced, never executed.  The scripts that source it set `set -euo pipefail`
# themselves; nothing here changes shell options.

# Repository root: the parent of the directory holding this file.  Resolved
# physically so the rendered nginx paths and the DSNs never contain "..".
ATRIUM_REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"

PG_BIN=/usr/lib/postgresql/15/bin
PY3=/usr/bin/python3 # Debian's interpreter: python3-aiosmtpd and python3-botocore belong to it.

# ---------------------------------------------------------------- messages

_prog="$(basename "$0")"

die() {
	printf '%s: error: %s\n' "$_prog" "$*" >&2
	exit 1
}

warn() {
	printf '%s: warning: %s\n' "$_prog" "$*" >&2
}

info() {
	printf '%s: %s\n' "$_prog" "$*"
}

need_root() {
	[[ ${EUID:-$(id -u)} -eq 0 ]] ||
		die "must run as root (it manages system users, PostgreSQL as the postgres user and nginx's master process)"
}

# ------------------------------------------------------------ configuration

# Validators.  Every value that ends up in nginx or PostgreSQL configuration,
# in a DSN or in atrium.env is checked here first, so that rendering can be a
# plain textual substitution without any quoting rules.

is_port() {
	[[ $1 =~ ^[0-9]{1,5}$ ]] && ((10#$1 >= 1 && 10#$1 <= 65535))
}

is_uint() {
	[[ $1 =~ ^[0-9]{1,9}$ ]]
}

# Lower-case DNS name, same rule as tenant_domains_host_format in sql/001.
is_hostname() {
	local h=$1
	((${#h} <= 253)) &&
		[[ $h =~ ^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$ ]]
}

# Paths are restricted to a conservative character set: they are written
# unquoted into nginx.conf, into libpq conninfo strings and pgpass files
# (where ':' and spaces would need escaping) and into postgresql.conf.
is_safe_path() {
	[[ $1 =~ ^/[A-Za-z0-9._/+-]*$ && $1 != *//* && $1 != */../* && $1 != */.. ]]
}

# Fills in every ATRIUM_* setting.  A value already present in the
# environment wins over the default (so `make test` can export, for example,
# ATRIUM_TENANT_CACHE_TTL=1 before `scripts/stack up`).
atrium_defaults() {
	: "${ATRIUM_STACK_DIR:=$ATRIUM_REPO/var}"
	ATRIUM_STACK_DIR="$(realpath -m -- "$ATRIUM_STACK_DIR")"
	: "${ATRIUM_HTTPS_PORT:=8443}"
	: "${ATRIUM_HTTP_PORT:=8080}"
	: "${ATRIUM_PG_PORT:=5433}"
	: "${ATRIUM_S3_PORT:=9000}"
	: "${ATRIUM_SMTP_PORT:=2525}"
	: "${ATRIUM_MAILVIEW_PORT:=1080}"
	: "${ATRIUM_WORKERS:=4}"
	: "${ATRIUM_BIN_DIR:=$ATRIUM_REPO/build/release}"
	ATRIUM_BIN_DIR="$(realpath -m -- "$ATRIUM_BIN_DIR")"
	: "${ATRIUM_BASE_DOMAIN:=portal.localhost}"
	: "${ATRIUM_LISTEN_ADDR:=127.0.0.1}"
	: "${ATRIUM_FSYNC:=on}"
	: "${ATRIUM_AUTH_RATE:=5r/s}"
	: "${ATRIUM_AUTH_BURST:=20}"
	: "${ATRIUM_ACCESS_TTL:=900}"
	: "${ATRIUM_REFRESH_GRACE_S:=60}"
	: "${ATRIUM_INVITE_TTL:=604800}"
	# the client identity's settings (ranges checked by the worker, config.c)
	: "${ATRIUM_REFRESH_TTL:=2592000}"
	: "${ATRIUM_RESET_TTL:=3600}"
	: "${ATRIUM_LOCKOUT_BASE_S:=900}"
	: "${ATRIUM_ARGON2_M_KIB:=19456}"
	: "${ATRIUM_ARGON2_T:=2}"
	: "${ATRIUM_ARGON2_P:=1}"
	: "${ATRIUM_COMMON_PASSWORDS_FILE:=$ATRIUM_REPO/node_modules/@zxcvbn-ts/language-common/src/passwords.json}"
	: "${ATRIUM_DIGEST_WINDOW_S:=300}"
	: "${ATRIUM_TENANT_CACHE_TTL:=5}"
	: "${ATRIUM_S3_BUCKET:=atrium}"
	: "${ATRIUM_S3_REGION:=us-east-1}"
	# empty: browsers use ATRIUM_S3_ENDPOINT, like the workers
	: "${ATRIUM_S3_PUBLIC_ENDPOINT:=}"
	# the WhatsApp Cloud API (tests point it at a local stand-in)
	: "${ATRIUM_WHATSAPP_BASE:=https://graph.facebook.com}"
	: "${ATRIUM_WHATSAPP_VERSION:=v21.0}"
	: "${ATRIUM_NOTIFY_MAX_ATTEMPTS:=8}"
	: "${ATRIUM_NOTIFY_POLL_S:=5}"
	: "${ATRIUM_TEMPLATE_DIR:=$ATRIUM_REPO/fcgi-app/templates}"
	ATRIUM_TEMPLATE_DIR="$(realpath -m -- "$ATRIUM_TEMPLATE_DIR")"

	case ${ATRIUM_FSYNC,,} in
	on | 1 | true | yes) ATRIUM_FSYNC=on ;;
	off | 0 | false | no) ATRIUM_FSYNC=off ;;
	*) die "ATRIUM_FSYNC must be on or off (got '$ATRIUM_FSYNC')" ;;
	esac

	local v
	for v in ATRIUM_HTTPS_PORT ATRIUM_HTTP_PORT ATRIUM_PG_PORT ATRIUM_S3_PORT \
		ATRIUM_SMTP_PORT ATRIUM_MAILVIEW_PORT; do
		is_port "${!v}" || die "$v must be a TCP port number 1-65535 (got '${!v}')"
	done
	# Two services on one port would fail late and confusingly: refuse early.
	local seen=" "
	for v in ATRIUM_HTTPS_PORT ATRIUM_HTTP_PORT ATRIUM_S3_PORT ATRIUM_SMTP_PORT ATRIUM_MAILVIEW_PORT; do
		[[ $seen == *" ${!v} "* ]] && die "$v=${!v} is used twice: every ATRIUM_*_PORT must differ"
		seen+="${!v} "
	done
	for v in ATRIUM_WORKERS ATRIUM_AUTH_BURST ATRIUM_ACCESS_TTL ATRIUM_REFRESH_GRACE_S \
		ATRIUM_INVITE_TTL ATRIUM_DIGEST_WINDOW_S ATRIUM_TENANT_CACHE_TTL ATRIUM_REFRESH_TTL \
		ATRIUM_RESET_TTL ATRIUM_LOCKOUT_BASE_S ATRIUM_ARGON2_M_KIB ATRIUM_ARGON2_T ATRIUM_ARGON2_P; do
		is_uint "${!v}" || die "$v must be a non-negative integer (got '${!v}')"
	done
	((ATRIUM_WORKERS >= 1 && ATRIUM_WORKERS <= 256)) || die "ATRIUM_WORKERS must be 1-256"
	[[ $ATRIUM_AUTH_RATE =~ ^[1-9][0-9]{0,6}r/[sm]$ ]] ||
		die "ATRIUM_AUTH_RATE must look like 5r/s or 300r/m (got '$ATRIUM_AUTH_RATE')"
	if ! is_hostname "$ATRIUM_BASE_DOMAIN" || [[ $ATRIUM_BASE_DOMAIN != *.* ]]; then
		die "ATRIUM_BASE_DOMAIN must be a lower-case DNS name with at least two labels (got '$ATRIUM_BASE_DOMAIN')"
	fi
	[[ $ATRIUM_LISTEN_ADDR =~ ^[0-9]{1,3}(\.[0-9]{1,3}){3}$ ]] ||
		die "ATRIUM_LISTEN_ADDR must be an IPv4 address (got '$ATRIUM_LISTEN_ADDR')"
	[[ $ATRIUM_S3_BUCKET =~ ^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$ ]] || die "ATRIUM_S3_BUCKET is not a valid bucket name"
	# The notifier's sender: noreply@ the base domain unless set.
	: "${ATRIUM_MAIL_FROM:=noreply@$ATRIUM_BASE_DOMAIN}"
	[[ ${#ATRIUM_MAIL_FROM} -le 254 && $ATRIUM_MAIL_FROM =~ ^[A-Za-z0-9._+-]+@[a-z0-9]([a-z0-9.-]*[a-z0-9])?$ ]] ||
		die "ATRIUM_MAIL_FROM must be a plain address like noreply@example.com (got '$ATRIUM_MAIL_FROM')"
	if ! [[ $ATRIUM_NOTIFY_MAX_ATTEMPTS =~ ^[0-9]{1,3}$ ]] ||
		((10#$ATRIUM_NOTIFY_MAX_ATTEMPTS < 1 || 10#$ATRIUM_NOTIFY_MAX_ATTEMPTS > 100)); then
		die "ATRIUM_NOTIFY_MAX_ATTEMPTS must be 1-100 (got '$ATRIUM_NOTIFY_MAX_ATTEMPTS')"
	fi
	if ! [[ $ATRIUM_NOTIFY_POLL_S =~ ^[0-9]{1,4}$ ]] ||
		((10#$ATRIUM_NOTIFY_POLL_S < 1 || 10#$ATRIUM_NOTIFY_POLL_S > 3600)); then
		die "ATRIUM_NOTIFY_POLL_S must be 1-3600 seconds (got '$ATRIUM_NOTIFY_POLL_S')"
	fi
	[[ $ATRIUM_S3_REGION =~ ^[a-z0-9-]{1,32}$ ]] || die "ATRIUM_S3_REGION is not a valid region name"

	is_safe_path "$ATRIUM_STACK_DIR" ||
		die "ATRIUM_STACK_DIR '$ATRIUM_STACK_DIR' must be an absolute path made of [A-Za-z0-9._/+-] only (it is written unquoted into DSNs, pgpass and nginx.conf)"
	is_safe_path "$ATRIUM_BIN_DIR" || die "ATRIUM_BIN_DIR '$ATRIUM_BIN_DIR' must be an absolute path made of [A-Za-z0-9._/+-] only"
	is_safe_path "$ATRIUM_TEMPLATE_DIR" || die "ATRIUM_TEMPLATE_DIR '$ATRIUM_TEMPLATE_DIR' must be an absolute path made of [A-Za-z0-9._/+-] only"
	is_safe_path "$ATRIUM_REPO" || die "the repository path '$ATRIUM_REPO' must be made of [A-Za-z0-9._/+-] only"
	# Unix socket paths are limited to 107 bytes; the longest one we create is
	# DIR/run/atrium-fcgi.sock.
	((${#ATRIUM_STACK_DIR} <= 80)) ||
		die "ATRIUM_STACK_DIR is ${#ATRIUM_STACK_DIR} characters long; at most 80 fit in a unix socket path (DIR/run/atrium-fcgi.sock)"

	atrium_derived
}

# Values derived from the settings above.  Also called after loading
# atrium.env, which stores only the settings.
atrium_derived() {
	DIR="$ATRIUM_STACK_DIR"
	RUN_DIR="$DIR/run"
	SECRETS_DIR="$DIR/secrets"
	LOG_DIR="$DIR/log"
	PG_DATA="$DIR/pg"
	NGINX_DIR="$DIR/nginx"
	TLS_DIR="$DIR/tls"
	ENV_FILE="$DIR/atrium.env"
	FCGI_SOCK="$RUN_DIR/atrium-fcgi.sock"
	if [[ $ATRIUM_HTTPS_PORT == 443 ]]; then HTTPS_PORT_SUFFIX=""; else HTTPS_PORT_SUFFIX=":$ATRIUM_HTTPS_PORT"; fi
}

# Loads DIR/atrium.env written by `stack up`: for every command except `up`
# the file describes the stack that is (or was) running, so its values win
# over the caller's environment.  Only ATRIUM_STACK_DIR picks the file.
atrium_load_env() {
	: "${ATRIUM_STACK_DIR:=$ATRIUM_REPO/var}"
	ATRIUM_STACK_DIR="$(realpath -m -- "$ATRIUM_STACK_DIR")"
	local f="$ATRIUM_STACK_DIR/atrium.env"
	[[ -e $f ]] || die "$f not found: the stack in $ATRIUM_STACK_DIR was never set up (run scripts/stack up, or set ATRIUM_STACK_DIR)"
	[[ -r $f ]] || die "cannot read $f (mode 0600, it holds the S3 secret): run as root"
	set -a
	# shellcheck disable=SC1090
	. "$f"
	set +a
	atrium_derived
}

# Quotes a value for a KEY='VALUE' line that both `.` (sh) and simple
# parsers can read: single quotes, with ' written as '\''.
env_quote() {
	local v=$1
	[[ $v != *$'\n'* ]] || die "refusing to write a value containing a newline into atrium.env"
	printf "'%s'" "${v//\'/\'\\\'\'}"
}

# ------------------------------------------------------------ environments

# The keys of atrium.env (scripts/stack; scripts/docker/entrypoint writes the
# same less ATRIUM_PG_SOCKET_DIR).  What each daemon gets of them:
ATRIUM_ENV_KEYS=(
	ATRIUM_STACK_DIR ATRIUM_BASE_DOMAIN ATRIUM_API_HOST ATRIUM_LISTEN_ADDR
	ATRIUM_HTTPS_PORT ATRIUM_HTTP_PORT ATRIUM_PUBLIC_PORT ATRIUM_PG_PORT
	ATRIUM_S3_PORT ATRIUM_SMTP_PORT ATRIUM_MAILVIEW_PORT
	ATRIUM_WORKERS ATRIUM_BIN_DIR ATRIUM_FSYNC ATRIUM_AUTH_RATE ATRIUM_AUTH_BURST
	ATRIUM_FCGI_SOCKET ATRIUM_NCHAN_SOCKET ATRIUM_PG_SOCKET_DIR ATRIUM_DB_DSN ATRIUM_DB_ADMIN_DSN PGPASSFILE
	ATRIUM_NOTIFIER_DSN
	ATRIUM_S3_ENDPOINT ATRIUM_S3_PUBLIC_ENDPOINT ATRIUM_S3_BUCKET ATRIUM_S3_REGION
	ATRIUM_S3_ACCESS_KEY_ID ATRIUM_S3_SECRET_ACCESS_KEY
	ATRIUM_SMTP_URL ATRIUM_SMTP_STARTTLS ATRIUM_MAIL_FROM ATRIUM_TEMPLATE_DIR
	ATRIUM_NOTIFY_MAX_ATTEMPTS ATRIUM_NOTIFY_POLL_S
	ATRIUM_MAILDIR ATRIUM_MAILVIEW_URL
	ATRIUM_JWT_KID ATRIUM_JWT_PRIVATE_KEY_FILE ATRIUM_JWT_PUBLIC_KEYS_DIR
	ATRIUM_UNSUBSCRIBE_KEY_FILE ATRIUM_WHATSAPP_BASE ATRIUM_WHATSAPP_VERSION
	ATRIUM_TLS_CERT_FILE ATRIUM_LOG_DIR
	ATRIUM_ACCESS_TTL ATRIUM_REFRESH_GRACE_S ATRIUM_INVITE_TTL
	ATRIUM_REFRESH_TTL ATRIUM_RESET_TTL ATRIUM_LOCKOUT_BASE_S
	ATRIUM_ARGON2_M_KIB ATRIUM_ARGON2_T ATRIUM_ARGON2_P ATRIUM_COMMON_PASSWORDS_FILE
	ATRIUM_DIGEST_WINDOW_S ATRIUM_TENANT_CACHE_TTL
)
# The workers: not the owner role's DSN and passfile, not the notifier's DSN.
ATRIUM_WORKER_ENV_EXCLUDE=" ATRIUM_DB_ADMIN_DSN PGPASSFILE ATRIUM_NOTIFIER_DSN "
# The notifier: none of the database credentials but its own, and none of
# the S3 and JWT secrets (it sends mail, nothing else).
ATRIUM_NOTIFIER_ENV_EXCLUDE=" ATRIUM_DB_ADMIN_DSN PGPASSFILE ATRIUM_DB_DSN ATRIUM_S3_ACCESS_KEY_ID ATRIUM_S3_SECRET_ACCESS_KEY ATRIUM_JWT_PRIVATE_KEY_FILE "

# Prints KEY=VALUE lines (one per element, for an array) of a daemon's clean
# environment: PATH, the keys of KEYS_ARRAY_NAME not named in EXCLUDE, and
# the sanitizer options of a test build.  Values come from the shell's
# variables (compute_env, or atrium.env once loaded).
#   mapfile -t envv < <(daemon_env ATRIUM_ENV_KEYS "$ATRIUM_NOTIFIER_ENV_EXCLUDE")
daemon_env() {
	local -n keys=$1
	local exclude=$2 k
	printf '%s\n' "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	for k in "${keys[@]}"; do
		[[ $exclude == *" $k "* ]] && continue
		[[ ${!k+set} ]] || continue
		printf '%s\n' "$k=${!k}"
	done
	for k in ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS; do
		[[ -n ${!k:-} ]] && printf '%s\n' "$k=${!k}"
	done
	return 0
}

# ---------------------------------------------------------------- processes

# Prints the pid stored in a pid file when that process is alive, is not a
# zombie and its command line contains every PATTERN; returns 1 otherwise.
# The pattern check keeps us from signalling an unrelated process that
# happens to have reused a stale pid (we only ever stop what we started).
running_pid() {
	local file=$1 pid="" cmd pat
	shift
	[[ -r $file ]] || return 1
	IFS= read -r pid <"$file" || [[ -n $pid ]] || return 1
	pid=${pid%%[!0-9]*}
	[[ $pid =~ ^[1-9][0-9]*$ ]] || return 1
	pid_alive "$pid" || return 1
	cmd=$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline") || return 1
	for pat in "$@"; do
		[[ $cmd == *"$pat"* ]] || return 1
	done
	printf '%s\n' "$pid"
}

# Child pids of PID (from /proc, so procps is not needed).
child_pids() {
	local parent=$1 s ppid
	for s in /proc/[0-9]*/status; do
		ppid=$(sed -n 's/^PPid:[[:space:]]*//p' "$s" 2>/dev/null) || continue
		if [[ $ppid == "$parent" ]]; then
			s=${s#/proc/}
			printf '%s\n' "${s%/status}"
		fi
	done
}

pid_alive() {
	local state
	[[ -r /proc/$1/status ]] || return 1
	state=$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$1/status" 2>/dev/null) || return 1
	[[ -n $state && $state != Z ]]
}

# Sends SIGTERM, waits up to TIMEOUT seconds, then SIGKILL.  Returns once the
# process is gone.
stop_pid() {
	local pid=$1 timeout=${2:-10} i
	kill -TERM "$pid" 2>/dev/null || return 0
	for ((i = 0; i < timeout * 10; i++)); do
		pid_alive "$pid" || return 0
		sleep 0.1
	done
	warn "pid $pid did not exit within ${timeout}s after SIGTERM; sending SIGKILL"
	kill -KILL "$pid" 2>/dev/null || true
	for ((i = 0; i < 50; i++)); do
		pid_alive "$pid" || return 0
		sleep 0.1
	done
	die "pid $pid survived SIGKILL"
}

# Closes every file descriptor above 2 in the current (sub)shell.  Called
# right before exec'ing a daemon so that it inherits neither our lock (fd 9)
# nor whatever pipes the caller's environment handed us: a daemon holding a
# pipe open can make `make run | tee log` or a CI runner wait forever.
close_fds() {
	local f n
	local -a fds=()
	for f in /proc/$BASHPID/fd/*; do
		n=${f##*/}
		[[ $n =~ ^[0-9]+$ ]] && ((n > 2)) && fds+=("$n")
	done
	for n in "${fds[@]}"; do
		# The glob's own directory fd is already gone: test before closing.
		[[ -e /proc/$BASHPID/fd/$n ]] && eval "exec $n>&-"
	done
	return 0
}

# True when something accepts TCP connections on 127.0.0.1:PORT.
tcp_open() {
	timeout 1 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "${2:-127.0.0.1}" "$1" 2>/dev/null
}

# Runs a command up to TIMEOUT seconds until it succeeds.
wait_until() {
	local timeout=$1 i
	shift
	for ((i = 0; i < timeout * 10; i++)); do
		"$@" && return 0
		sleep 0.1
	done
	return 1
}

# True when USER can reach PATH with the given test (-x for directories to
# traverse, -r to read...).  runuser -u runs the command directly, without the
# user's (nologin) shell.
user_can() {
	local user=$1 op=$2 path=$3
	(cd / && runuser -u "$user" -- test "$op" "$path") 2>/dev/null
}

# ---------------------------------------------------------------- rendering

# Renders a template: every ${ATRIUM_NAME} placeholder is replaced by the
# value of the shell variable of that name.  Only the names listed after SRC
# and DST may appear (a fixed list, like envsubst's SHELL-FORMAT argument); an
# unknown placeholder is an error rather than an empty string, because a
# silently empty path in nginx.conf would be a debugging session.  Values were
# validated by atrium_defaults.  nginx's own variables ($host, $uri...) are
# written without braces in the templates and are left alone.
render_template() {
	local src=$1 dst=$2 tmp name
	shift 2
	local -a pairs=()
	for name in "$@"; do
		[[ -v $name ]] || die "render_template: \$$name is not set"
		pairs+=("$name" "${!name}")
	done
	[[ -r $src ]] || die "template $src not found"
	tmp="$(mktemp "$dst.XXXXXX")"
	if ! perl -e '
		my $src = shift @ARGV;
		my %val = @ARGV;
		open(my $in, "<", $src) or die "cannot read $src: $!\n";
		local $/; my $t = <$in>;
		my %missing;
		$t =~ s{\$\{(ATRIUM_[A-Z0-9_]+)\}}{
			exists $val{$1} ? $val{$1} : do { $missing{$1} = 1; "" }
		}ge;
		die "$src: placeholders without a value: @{[sort keys %missing]}\n" if %missing;
		print $t;
	' "$src" "${pairs[@]}" >"$tmp"; then
		rm -f "$tmp"
		die "could not render $src"
	fi
	chmod 0644 "$tmp"
	mv -f "$tmp" "$dst"
}

# ---------------------------------------------------------------- psql

# psql with settings that make scripts predictable: no ~/.psqlrc, stop at
# the first error, no notices on stdout.
atrium_psql() {
	PGOPTIONS="${PGOPTIONS:-} -c client_min_messages=warning" \
		psql -X -q -v ON_ERROR_STOP=1 "$@"
}

# Roles, database and privileges: atrium_owner runs the migrations and owns
# the schema; atrium_app (what the workers use) owns nothing and has no
# BYPASSRLS; atrium_notifier (the outbox daemon) owns nothing, has no
# BYPASSRLS and gets its table privileges and policies from the migrations
# (sql/004), so it must exist before they run.  Idempotent, and run at every
# start so that the role passwords always match OWNER_PW_FILE, APP_PW_FILE
# and NOTIFIER_PW_FILE.  SU_DSN: a superuser connection (its password from
# the DSN's passfile or PGPASSWORD).  The role passwords travel through the
# environment and psql's \getenv, never on a command line (visible in ps)
# nor in SQL text.  Used by scripts/stack and scripts/docker/entrypoint.
#   atrium_pg_bootstrap SU_DSN OWNER_PW_FILE APP_PW_FILE NOTIFIER_PW_FILE
atrium_pg_bootstrap() {
	local su_dsn=$1 owner_pw app_pw notifier_pw
	owner_pw=$(<"$2") || return 1
	app_pw=$(<"$3") || return 1
	notifier_pw=$(<"$4") || return 1
	ATRIUM_OWNER_PW=$owner_pw ATRIUM_APP_PW=$app_pw ATRIUM_NOTIFIER_PW=$notifier_pw \
		atrium_psql "$su_dsn" <<'SQL'
\getenv owner_pw ATRIUM_OWNER_PW
\getenv app_pw ATRIUM_APP_PW
\getenv notifier_pw ATRIUM_NOTIFIER_PW
SELECT 'CREATE ROLE atrium_owner' WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'atrium_owner') \gexec
SELECT 'CREATE ROLE atrium_app' WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'atrium_app') \gexec
SELECT 'CREATE ROLE atrium_notifier' WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'atrium_notifier') \gexec
-- The owner runs migrations; the app role is what the workers use: not an
-- owner of anything, no BYPASSRLS, so row-level security always applies.
-- The notifier role likewise; it reads every tenant's outbox only through
-- the policies written for it by name in the migrations.
ALTER ROLE atrium_owner WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD :'owner_pw';
ALTER ROLE atrium_app WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD :'app_pw';
ALTER ROLE atrium_notifier WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD :'notifier_pw';
SELECT 'CREATE DATABASE atrium OWNER atrium_owner ENCODING ''UTF8'' TEMPLATE template0'
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'atrium') \gexec
ALTER DATABASE atrium OWNER TO atrium_owner;
REVOKE ALL ON DATABASE atrium FROM PUBLIC;
GRANT CONNECT ON DATABASE atrium TO atrium_app;
GRANT CONNECT ON DATABASE atrium TO atrium_notifier;
\connect atrium
ALTER SCHEMA public OWNER TO atrium_owner;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO atrium_app;
-- No default privileges for the notifier: each table it may touch is
-- granted by name in a migration (sql/004), everything else stays closed.
GRANT USAGE ON SCHEMA public TO atrium_notifier;
-- Everything the owner creates later (migrations) is usable by the app
-- role, without per-table GRANTs in the migrations.
ALTER DEFAULT PRIVILEGES FOR ROLE atrium_owner IN SCHEMA public
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO atrium_app;
ALTER DEFAULT PRIVILEGES FOR ROLE atrium_owner IN SCHEMA public
    GRANT USAGE, SELECT ON SEQUENCES TO atrium_app;
ALTER DEFAULT PRIVILEGES FOR ROLE atrium_owner IN SCHEMA public
    GRANT EXECUTE ON FUNCTIONS TO atrium_app;
SQL
}

# ---------------------------------------------------------------- stack-wide

# One stack-changing command at a time per DIR (two `make test` runs, a
# `down` racing an `up`, a vhost added during a reload).  The lock is fd 9;
# every daemon is started after close_fds so that none of them inherits it.
lock_stack() {
	exec 9>>"$DIR/.stack.lock"
	flock -w 300 9 || die "another stack command has held $DIR/.stack.lock for more than 300 s"
}

nginx_args() { printf '%s\n' -p "$NGINX_DIR/" -e "$NGINX_DIR/error.log" -c "$NGINX_DIR/nginx.conf"; }

nginx_pid() { running_pid "$NGINX_DIR/nginx.pid" "nginx: master process" "$NGINX_DIR/nginx.conf"; }

# `nginx -s reload` only signals the master and returns at once; for a
# moment afterwards new connections may still reach the old workers (a test
# that adds a vhost and immediately requests it would see the old config).
# So wait until the master has started new workers and every old worker
# is gone or shutting down (it then no longer accepts connections).
nginx_reload_wait() {
	local master=$1 old p cmd i fresh stale
	local -a args
	mapfile -t args < <(nginx_args)
	old=" $(child_pids "$master" | tr '\n' ' ') "
	nginx "${args[@]}" -s reload 9>&- || return 1
	for ((i = 0; i < 150; i++)); do
		fresh=0 stale=0
		for p in $(child_pids "$master"); do
			if [[ $old == *" $p "* ]]; then
				cmd=$(tr '\0' ' ' 2>/dev/null <"/proc/$p/cmdline" || true)
				[[ -z $cmd || $cmd == *"shutting down"* ]] || stale=$((stale + 1))
			else
				fresh=$((fresh + 1))
			fi
		done
		((fresh >= 1 && stale == 0)) && return 0
		sleep 0.1
	done
	warn "nginx did not replace its workers within 15 s after the reload signal; see $NGINX_DIR/error.log"
	return 1
}

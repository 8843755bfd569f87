#!/usr/bin/env bash
# Validates the container deployment without a Docker daemon:
#  1. docker-compose.yml, with `docker compose config` (the plugin), else `docker-compose config`
#     (installed when missing: Debian's package as root, else v1.29.2 from PyPI in a venv); with a
#     dummy AGORA_DRIVER_TOKEN it must pass, without one it must fail with "set AGORA_DRIVER_TOKEN";
#  2. every agoraN service of docker-compose.yml is a `server` of deploy/nginx.conf, and back;
#  3. deploy/nginx.conf with `nginx -t` when an nginx binary can be had (the installed one, or
#     Debian's unpacked into a temporary directory, never installed or started); skipped otherwise.
# Used by .ci/run; runs as well by hand from any directory.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { echo "check-compose: $*"; }
fail() {
    echo "check-compose: FAILED: $*" >&2
    exit 1
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# --- 1. docker-compose.yml --------------------------------------------------------------------

venv="${XDG_CACHE_HOME:-$HOME/.cache}/agora/compose-v1"
compose=()
find_compose() {
    if docker compose version >/dev/null 2>&1; then
        compose=(docker compose)
    elif command -v docker-compose >/dev/null 2>&1; then
        compose=(docker-compose)
    elif [ -x "$venv/bin/docker-compose" ]; then
        compose=("$venv/bin/docker-compose")
    else
        return 1
    fi
}

install_compose() {
    # AGORA_COMPOSE_INSTALL=pip forces the PyPI route (to test it where apt-get exists).
    if [ "${AGORA_COMPOSE_INSTALL:-}" != pip ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        say "installing docker-compose (apt-get)"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker-compose >/dev/null
    else
        say "installing docker-compose 1.29.2 (pip, into $venv)"
        python3 -m venv "$venv"
        # docker-compose 1.29.2 needs PyYAML < 6, whose sdist does not build with Cython 3.
        echo 'cython<3' >"$tmp/constraints.txt"
        PIP_CONSTRAINT="$tmp/constraints.txt" "$venv/bin/pip" install --quiet --disable-pip-version-check \
            docker-compose==1.29.2
    fi
}

find_compose || { install_compose && find_compose; } || fail "no docker compose and none could be installed"
say "validating docker-compose.yml with: ${compose[*]} ($("${compose[@]}" version --short 2>/dev/null || true))"

# A `.env` beside the file, or the caller's own token, must not decide the outcome.
AGORA_DRIVER_TOKEN=ci-dummy-token "${compose[@]}" -f docker-compose.yml config -q ||
    fail "docker-compose.yml is invalid (see above)"
if out=$(env -u AGORA_DRIVER_TOKEN "${compose[@]}" -f docker-compose.yml config -q 2>&1); then
    fail "docker-compose.yml is accepted without AGORA_DRIVER_TOKEN; it must require it"
fi
grep -q "set AGORA_DRIVER_TOKEN" <<<"$out" ||
    fail "without AGORA_DRIVER_TOKEN, expected the error 'set AGORA_DRIVER_TOKEN', got: $out"
say "docker-compose.yml is valid, and refused without AGORA_DRIVER_TOKEN"

# --- 2. nodes of the compose file == servers of the load balancer ------------------------------

nodes=$(grep -oE '^  agora[0-9]+:' docker-compose.yml | tr -d ' :' | sort)
servers=$(grep -oE '^[[:space:]]*server[[:space:]]+agora[0-9]+:8080' deploy/nginx.conf |
    awk '{ sub(/:8080$/, "", $2); print $2 }' | sort)
[ -n "$nodes" ] || fail "no agoraN service found in docker-compose.yml"
[ "$nodes" = "$servers" ] ||
    fail "the agoraN services of docker-compose.yml ($(echo $nodes)) differ from the servers of deploy/nginx.conf ($(echo $servers))"
say "deploy/nginx.conf balances over every node: $(echo $nodes)"

# --- 3. deploy/nginx.conf ----------------------------------------------------------------------

nginx=""
if command -v nginx >/dev/null 2>&1; then
    nginx=$(command -v nginx)
elif [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && command -v dpkg >/dev/null 2>&1; then
    if (cd "$tmp" && apt-get download -qq -o APT::Sandbox::User=root nginx >/dev/null 2>&1) &&
        dpkg -x "$tmp"/nginx_*.deb "$tmp/pkg"; then
        nginx="$tmp/pkg/usr/sbin/nginx"
    fi
fi
if [ -z "$nginx" ]; then
    say "nginx.conf: skipped (no nginx binary here)"
    exit 0
fi
# A test copy that any nginx >= 1.19.5 can check without the compose network: the node names
# become 127.0.0.1 (nginx resolves names while checking), `resolve` goes (open source nginx has
# it only since 1.27.3, the image has it), and temporary paths point into $tmp (checking
# creates them, added on the `http {` line so that line numbers in errors stay right). Every
# other line is checked as written.
mkdir -p "$tmp/conf"
sed -E \
    -e 's/^([[:space:]]*server[[:space:]]+)[A-Za-z0-9_.-]+:([0-9]+)/\1127.0.0.1:\2/' \
    -e 's/[[:space:]]+resolve;/;/' \
    -e "s|^http[[:space:]]*\{|& client_body_temp_path $tmp/body; proxy_temp_path $tmp/proxy; fastcgi_temp_path $tmp/fastcgi; uwsgi_temp_path $tmp/uwsgi; scgi_temp_path $tmp/scgi;|" \
    deploy/nginx.conf >"$tmp/conf/nginx.conf"
"$nginx" -t -q -e stderr -p "$tmp/" -c "$tmp/conf/nginx.conf" ||
    fail "deploy/nginx.conf does not pass nginx -t (see above)"
say "deploy/nginx.conf passes nginx -t ($("$nginx" -v 2>&1 | sed 's/.*: //'))"

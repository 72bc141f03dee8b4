#!/usr/bin/env bash
# The container, built and run for real: deploy/container-test.sh (or `make container-test`).
#
# Builds the Dockerfile as it is and runs the image three ways, each with Redis beside it:
#   1. plain `podman run`, SQLite on a volume;
#   2. docker-compose.yml through podman-compose;
#   3. docker-compose.yml + docker-compose.postgres.yml (PostgreSQL).
# Each time: /readyz answers, the image's health check passes, deploy/smoke.sh passes, an
# upload is made ready, the stop ends within the grace period (timed, exit status 0), and a
# new container on the same volume still has the user and the file.
#
# Engine: podman (a Docker engine is not needed). What is missing is installed: podman and
# friends with apt-get, podman-compose with pip into a venv of its own (under CACHE below).
# Base images: where a registry answers, the real python:3.11-slim, redis:7-alpine and
# postgres:16-alpine are pulled; where none does, stand-ins are made from Debian's packages
# (debootstrap from the mirror apt already uses) and tagged with those names, and the
# script says so. Stand-ins already present are reused; missing or outdated ones are made
# again. Every container, volume, network and pod of a run carries the run's own name and
# is removed on exit, failed runs included.
#
# Settings (environment): COFFER_CONTAINER_CACHE (default ~/.cache/coffer-container-test),
# STANDIN=always to skip trying a registry, KEEP_IMAGE=1 to keep the run's image tag.
# Needs root (apt-get, debootstrap, rootful podman).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
STARTED=$SECONDS

RUN="coffer-ct-$(date +%s)-$$"
CACHE=${COFFER_CONTAINER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/coffer-container-test}
WORK=$(mktemp -d "/tmp/$RUN.XXXXXX")
IMAGE="localhost/$RUN:latest"
# The build cache: kept between runs, so a warm run rebuilds only the layers that changed.
CACHE_TAG="localhost/coffer-container-test:latest"
# The stop_grace_period of docker-compose.yml, and the `podman stop -t` of the plain run.
GRACE=100
# A stop must end within the grace period, before podman's SIGKILL. With nothing in hand it
# takes a few seconds, except where Redis went first (podman-compose stops services in
# parallel): each lookup of the removed Redis container's name, retried by redis-py, takes
# seconds, 20-50 s in all (measured here). Before the worker's fix it was SIGKILL at 60 s.
STOP_LIMIT=${STOP_LIMIT:-$GRACE}
PODMAN_COMPOSE_VERSION=1.6.0
# Bump when the stand-in recipes below change: older stand-ins are then made again.
STANDIN_VERSION=1
DEBIAN_SUITE=bookworm
BASES=(python:3.11-slim redis:7-alpine postgres:16-alpine)

say() { echo "==> [$((SECONDS - STARTED))s] $*"; }
fail() {
  echo "FAIL: $*" >&2
  exit 1
}

# ---- clean-up: everything named after this run ---------------------------------------

cleanup() {
  local status=$?
  set +e
  if [[ $status -ne 0 ]]; then
    # podman's own complaints (without systemd it cannot time health checks: harmless).
    [[ -s "$WORK/podman.log" ]] && grep -v 'systemd connection' "$WORK/podman.log" | tail -n 20 >&2
    for name in $(podman ps -a --filter "name=$RUN" --format '{{.Names}}' 2>/dev/null); do
      echo "---- last lines of $name ----" >&2
      podman logs --tail 40 "$name" >&2 2>&1
    done
  fi
  say "cleaning up $RUN"
  podman ps -a --filter "name=$RUN" -q 2>/dev/null | xargs -r podman rm -f -v -t 0 >/dev/null 2>&1
  podman pod ls --filter "name=$RUN" -q 2>/dev/null | xargs -r podman pod rm -f >/dev/null 2>&1
  podman volume ls --filter "name=$RUN" -q 2>/dev/null | xargs -r podman volume rm -f >/dev/null 2>&1
  podman network ls --filter "name=$RUN" -q 2>/dev/null | xargs -r podman network rm -f >/dev/null 2>&1
  if [[ -z "${KEEP_IMAGE:-}" ]]; then
    # Only this run's tag: the image stays under CACHE_TAG for the next run's build cache.
    # The images this run built and left without a tag (compose's build) go.
    podman image inspect --format '{{.Id}}' "$IMAGE" >>"$WORK/built" 2>/dev/null
    podman untag "$IMAGE" "$IMAGE" >/dev/null 2>&1
    for id in $(sort -u "$WORK/built" 2>/dev/null); do
      [[ "$(podman image inspect --format '{{len .RepoTags}}' "$id" 2>/dev/null)" == 0 ]] &&
        podman rmi "$id" >/dev/null 2>&1
    done
  fi
  rm -rf "$WORK"
  if [[ $status -eq 0 ]]; then
    say "container test passed in $((SECONDS - STARTED)) s"
  else
    echo "container test FAILED after $((SECONDS - STARTED)) s (exit $status)" >&2
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- tools ---------------------------------------------------------------------------

ensure_tools() {
  local missing=()
  command -v podman >/dev/null || missing+=(podman buildah runc uidmap slirp4netns
    fuse-overlayfs containernetworking-plugins)
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  command -v curl >/dev/null || missing+=(curl)
  if ((${#missing[@]})); then
    say "installing ${missing[*]} with apt-get"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
  # podman's defaults that fail on machines like CI's: crun refuses hybrid cgroups, the
  # default rlimits need CAP_SYS_RESOURCE, the journal is not there. Given through
  # CONTAINERS_CONF, so the machine's own containers.conf stays untouched.
  cat >"$WORK/containers.conf" <<'EOF'
[containers]
default_ulimits = ["nofile=16384:16384", "nproc=16384:16384"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
  export CONTAINERS_CONF="$WORK/containers.conf"
  # Docker's image format keeps the Dockerfile's HEALTHCHECK (OCI's has no such field).
  export BUILDAH_FORMAT=docker

  local venv="$CACHE/podman-compose"
  if [[ "$("$venv/bin/podman-compose" --version 2>/dev/null | grep -o 'podman-compose version [0-9.]*')" \
    != "podman-compose version $PODMAN_COMPOSE_VERSION" ]]; then
    say "installing podman-compose $PODMAN_COMPOSE_VERSION into $venv"
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check \
      "podman-compose==$PODMAN_COMPOSE_VERSION" "PyYAML==6.0.3" "python-dotenv==1.2.1"
  fi
  PODMAN_COMPOSE="$venv/bin/podman-compose"
}

# ---- base images: the real ones, or stand-ins from Debian's packages -------------------

standin_version() {
  podman image inspect --format '{{index .Config.Labels "coffer.standin"}}' "$1" 2>/dev/null
}

# The Debian mirror apt already uses (deb822 sources first, then sources.list).
debian_mirror() {
  local mirror
  mirror=$(grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' |
    grep -v security | head -n1 || true)
  if [[ -z "$mirror" ]]; then
    mirror=$(grep -hs '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list |
      awk '{print $2}' | grep -v security | head -n1 || true)
  fi
  echo "${mirror:-http://deb.debian.org/debian}"
}

STANDIN_BASE="localhost/coffer-standin-debian:$DEBIAN_SUITE"

make_standin_base() {
  if [[ "$(standin_version "$STANDIN_BASE")" == "$STANDIN_VERSION" ]]; then
    return
  fi
  local mirror root="$WORK/rootfs"
  mirror=$(debian_mirror)
  say "no registry: making a Debian $DEBIAN_SUITE root with debootstrap from $mirror"
  mkdir -p "$CACHE/debs"
  debootstrap --variant=minbase --include=ca-certificates --cache-dir="$CACHE/debs" \
    "$DEBIAN_SUITE" "$root" "$mirror" >"$WORK/debootstrap.log" 2>&1 ||
    { tail -n 30 "$WORK/debootstrap.log" >&2; fail "debootstrap failed"; }
  # HTTPS from the builds may go through a proxy whose CA this machine trusts: the
  # stand-ins trust what this machine trusts.
  if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
    cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
    chroot "$root" update-ca-certificates >/dev/null 2>&1
  fi
  # Mirrors that serve a dated snapshot have Release files past their Valid-Until.
  printf 'Acquire::Check-Valid-Until "false";\nAPT::Install-Recommends "false";\n' \
    >"$root/etc/apt/apt.conf.d/90coffer-standin"
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  tar -C "$root" -c . | podman import \
    --change "LABEL coffer.standin=$STANDIN_VERSION" \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    - "$STANDIN_BASE" >/dev/null
  rm -rf "$root"
}

# standin_build NAME CONTEXT: build CONTEXT/Containerfile and tag it docker.io/library/NAME.
standin_build() {
  local name=$1 context=$2
  say "no registry: making a stand-in for $name from Debian's packages"
  podman build -q --format docker --build-arg "BASE=$STANDIN_BASE" \
    --label "coffer.standin=$STANDIN_VERSION" -t "docker.io/library/$name" \
    -f "$context/Containerfile" "$context" >/dev/null
}

make_standin() {
  local name=$1 context="$WORK/standin-${1%%:*}"
  mkdir -p "$context"
  make_standin_base
  case "$name" in
    python:*)
      # The official image's layout: python, pip and their venv under /usr/local.
      cat >"$context/Containerfile" <<'EOF'
ARG BASE
FROM $BASE
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y python3 python3-venv netbase tzdata \
    && rm -rf /var/lib/apt/lists/* \
    && python3 -m venv /usr/local \
    && printf '[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n' >/etc/pip.conf
CMD ["python3"]
EOF
      ;;
    redis:*)
      # As the official image: /data as the working directory, redis-server as the
      # redis user, protected mode off (the container's network is the boundary).
      cat >"$context/entrypoint.sh" <<'EOF'
#!/bin/sh
set -e
if [ "${1#-}" != "$1" ]; then set -- redis-server "$@"; fi
if [ "$1" = redis-server ]; then
  shift
  chown -R redis:redis /data
  exec setpriv --reuid redis --regid redis --init-groups redis-server --protected-mode no "$@"
fi
exec "$@"
EOF
      cat >"$context/Containerfile" <<'EOF'
ARG BASE
FROM $BASE
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y redis-server \
    && rm -rf /var/lib/apt/lists/* && mkdir -p /data
COPY --chmod=755 entrypoint.sh /usr/local/bin/docker-entrypoint.sh
WORKDIR /data
VOLUME /data
EXPOSE 6379
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["redis-server"]
EOF
      ;;
    postgres:*)
      # As the official image: POSTGRES_USER, POSTGRES_PASSWORD and POSTGRES_DB set up a
      # new PGDATA; password logins over the network; the server runs as postgres.
      # Debian's PostgreSQL is 15: what Coffer uses of it is the same as 16's.
      cat >"$context/entrypoint.sh" <<'EOF'
#!/bin/sh
set -eu
as_postgres() { setpriv --reuid postgres --regid postgres --init-groups "$@"; }
if [ "$1" = postgres ]; then
  mkdir -p "$PGDATA" /var/run/postgresql
  chown postgres:postgres "$PGDATA" /var/run/postgresql
  chmod 700 "$PGDATA"
  if [ ! -s "$PGDATA/PG_VERSION" ]; then
    : "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD must be set}"
    user=${POSTGRES_USER:-postgres}
    db=${POSTGRES_DB:-$user}
    pwfile=$(mktemp)
    printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
    chown postgres "$pwfile"
    as_postgres initdb -D "$PGDATA" --username="$user" --pwfile="$pwfile" \
      --auth-local=trust --auth-host=scram-sha-256 >/dev/null
    rm -f "$pwfile"
    echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
    echo "listen_addresses = '*'" >>"$PGDATA/postgresql.conf"
    if [ "$db" != postgres ]; then
      as_postgres pg_ctl -D "$PGDATA" -w -o "-c listen_addresses=''" start >/dev/null
      as_postgres createdb -U "$user" "$db"
      as_postgres pg_ctl -D "$PGDATA" -w stop >/dev/null
    fi
  fi
  exec setpriv --reuid postgres --regid postgres --init-groups "$@"
fi
exec "$@"
EOF
      cat >"$context/Containerfile" <<'EOF'
ARG BASE
FROM $BASE
# Debian's package would make a cluster of its own at install: PGDATA is the entrypoint's.
RUN mkdir -p /etc/postgresql-common \
    && echo 'create_main_cluster = false' >/etc/postgresql-common/createcluster.conf \
    && apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -o Dpkg::Options::=--force-confold \
       postgresql-15 \
    && rm -rf /var/lib/apt/lists/*
COPY --chmod=755 entrypoint.sh /usr/local/bin/docker-entrypoint.sh
ENV PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PGDATA=/var/lib/postgresql/data
VOLUME /var/lib/postgresql/data
EXPOSE 5432
STOPSIGNAL SIGINT
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["postgres"]
EOF
      ;;
  esac
  standin_build "$name" "$context"
}

ensure_base_images() {
  local name ref version
  for name in "${BASES[@]}"; do
    ref="docker.io/library/$name"
    version=$(standin_version "$ref" || true)
    if podman image exists "$ref" && { [[ -z "$version" ]] || [[ "$version" == "$STANDIN_VERSION" ]]; }; then
      [[ -n "$version" ]] && say "reusing the stand-in for $name (made from Debian's packages)"
      continue
    fi
    if [[ "${STANDIN:-}" != "always" ]] && timeout 60 podman pull -q "$ref" >/dev/null 2>&1; then
      say "pulled $name from the registry"
      continue
    fi
    make_standin "$name"
  done
  if [[ -n "$(standin_version docker.io/library/python:3.11-slim)" ]]; then
    say "NOTE: the base images are stand-ins made from Debian $DEBIAN_SUITE's packages" \
      "(no image registry answered): Python 3.11, Redis 7.0 and PostgreSQL 15"
  fi
}

# ---- helpers -------------------------------------------------------------------------

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_ready PORT: until /readyz answers 200; prints the seconds it took.
wait_ready() {
  local port=$1 from=$SECONDS
  until curl -fsS --max-time 5 -o /dev/null "http://127.0.0.1:$port/readyz" 2>/dev/null; do
    ((SECONDS - from < 120)) || fail "/readyz did not answer 200 within 120 s on port $port"
    sleep 0.5
  done
  say "/readyz answers 200, $((SECONDS - from)) s after the start"
}

# timed_stop NAME COMMAND...: run the stop COMMAND; fail past STOP_LIMIT seconds.
timed_stop() {
  local what=$1 from
  shift
  from=$(date +%s.%N)
  "$@" >/dev/null 2>>"$WORK/podman.log"
  local took
  took=$(python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" \
    "$from" "$(date +%s.%N)")
  say "$what stopped in $took s (grace period $GRACE s)"
  python3 -c "import sys; sys.exit(float(sys.argv[1]) > float(sys.argv[2]))" "$took" "$STOP_LIMIT" ||
    fail "$what took $took s to stop: more than $STOP_LIMIT s with nothing in hand"
}

# exited_cleanly CONTAINER: its main process exited 0 (supervisord stopped everything).
exited_cleanly() {
  local code
  code=$(podman inspect --format '{{.State.ExitCode}}' "$1")
  [[ "$code" == 0 ]] || fail "$1 exited $code after its stop, not 0"
}

health() {
  podman healthcheck run "$1" >/dev/null || fail "the image's HEALTHCHECK fails in $1"
  say "the image's health check passes in $1"
}

# exercise BASE_URL STATE CONTAINER: health, smoke test, an upload made ready.
exercise() {
  local base=$1 state=$2 container=$3
  health "$container"
  SMOKE_TIMEOUT=60 deploy/smoke.sh "$base" | sed 's/^/     /'
  python3 deploy/container_check.py put "$base" "$state"
}

# ---- 1. podman run -------------------------------------------------------------------

plain_run() {
  local net="$RUN-net" volume="$RUN-data" port base state="$WORK/plain.json"
  port=$(free_port)
  base="http://127.0.0.1:$port"
  say "1/3 podman run: $IMAGE with Redis beside it, SQLite on volume $volume"
  podman network create "$net" >/dev/null
  podman volume create "$volume" >/dev/null
  podman run -d --name "$RUN-redis" --network "$net" --network-alias redis \
    docker.io/library/redis:7-alpine redis-server --appendonly yes >/dev/null 2>>"$WORK/podman.log"
  local env_args=(-e "SECRET_KEY=$(python3 -c 'import secrets; print(secrets.token_hex(32))')"
    -e "REDIS_URL=redis://redis:6379/0" -e "PUBLIC_URL=$base" -e "SESSION_COOKIE_SECURE=false")
  local app_args=(--network "$net" -p "127.0.0.1:$port:8000" -v "$volume:/data" "${env_args[@]}")
  podman run -d --name "$RUN-app" "${app_args[@]}" "$IMAGE" >/dev/null 2>>"$WORK/podman.log"
  wait_ready "$port"
  exercise "$base" "$state" "$RUN-app"
  timed_stop "podman stop $RUN-app" podman stop -t "$GRACE" "$RUN-app"
  exited_cleanly "$RUN-app"
  say "a new container on the same volume"
  podman run -d --name "$RUN-app2" "${app_args[@]}" "$IMAGE" >/dev/null 2>>"$WORK/podman.log"
  wait_ready "$port"
  python3 deploy/container_check.py check "$base" "$state"
  timed_stop "podman stop $RUN-app2" podman stop -t "$GRACE" "$RUN-app2"
  exited_cleanly "$RUN-app2"
  podman rm -f -v -t 0 "$RUN-app" "$RUN-app2" "$RUN-redis" >/dev/null 2>>"$WORK/podman.log"

  say "a host directory owned by root on /data: refused with what to do, then mounted with :U"
  local host_dir="$WORK/host-data"
  mkdir -m 0755 "$host_dir"
  if podman run --rm --name "$RUN-perm" -v "$host_dir:/data" "${env_args[@]}" "$IMAGE" true \
    >"$WORK/perm.log" 2>&1; then
    fail "the container started on a /data it cannot write"
  fi
  grep -q "is not writable by this container's user" "$WORK/perm.log" ||
    { cat "$WORK/perm.log" >&2; fail "the refusal does not say what to do"; }
  podman run --rm --name "$RUN-perm" -v "$host_dir:/data:U" "${env_args[@]}" "$IMAGE" true \
    >"$WORK/perm.log" 2>&1 || { cat "$WORK/perm.log" >&2; fail "the :U mount did not start"; }
  [[ -s "$host_dir/coffer.db" ]] || fail "no database in the host directory after the :U start"
  say "ok: refused with a clear message; with :U it migrates into the host directory"
}

# ---- 2 and 3. podman-compose ---------------------------------------------------------

# compose_run LABEL PROJECT FILE...: up, exercise, a timed down, up again, check, down.
compose_run() {
  local label=$1 project=$2
  shift 2
  local files=() file port base state="$WORK/$project.json"
  for file in "$@"; do files+=(-f "$file"); done
  port=$(free_port)
  base="http://127.0.0.1:$port"
  local compose=("$PODMAN_COMPOSE" -p "$project" "${files[@]}")
  export COFFER_IMAGE="$IMAGE" COFFER_BIND=127.0.0.1 COFFER_PORT=$port PUBLIC_URL=$base
  export SESSION_COOKIE_SECURE=false
  SECRET_KEY=$(python3 -c 'import secrets; print(secrets.token_hex(32))')
  POSTGRES_PASSWORD=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
  export SECRET_KEY POSTGRES_PASSWORD
  say "$label: podman-compose ${*} (project $project)"
  # --build: compose's own `build: .`, from the layers the first build cached.
  "${compose[@]}" up -d --build >"$WORK/$project-up.log" 2>&1 ||
    { tail -n 40 "$WORK/$project-up.log" >&2; fail "podman-compose up failed"; }
  local app="${project}_app_1"
  podman image inspect --format '{{.Id}}' "$IMAGE" >>"$WORK/built"
  wait_ready "$port"
  exercise "$base" "$state" "$app"
  # podman-compose stops the services in parallel: the workers lose Redis while stopping.
  timed_stop "podman-compose down ($label)" "${compose[@]}" down
  [[ -z "$(podman ps -a --filter "name=$project" -q)" ]] || fail "containers left after down"
  podman volume exists "${project}_coffer-data" || fail "down removed the data volume"
  say "up again: new containers on the same volumes"
  "${compose[@]}" up -d >"$WORK/$project-up2.log" 2>&1 ||
    { tail -n 40 "$WORK/$project-up2.log" >&2; fail "podman-compose up (again) failed"; }
  wait_ready "$port"
  python3 deploy/container_check.py check "$base" "$state"
  "${compose[@]}" down -v >/dev/null 2>&1
}

# ---- the run -------------------------------------------------------------------------

[[ $(id -u) -eq 0 ]] || fail "run as root: apt-get, debootstrap and rootful podman need it"
ensure_tools
ensure_base_images
say "building the Dockerfile as it is"
build_from=$SECONDS
# The previous build-cache image: left without a tag by this build, it goes at the end.
podman image inspect --format '{{.Id}}' "$CACHE_TAG" >>"$WORK/built" 2>/dev/null || true
podman build -q --format docker -t "$IMAGE" -t "$CACHE_TAG" . >"$WORK/build.log" 2>&1 ||
  { tail -n 40 "$WORK/build.log" >&2; fail "podman build failed"; }
say "built $IMAGE in $((SECONDS - build_from)) s: $(podman image inspect --format '{{.Size}}' "$IMAGE" |
  awk '{printf "%.0f MB", $1 / 1e6}')"
plain_run
compose_run "2/3 docker-compose.yml" "$RUN-c" docker-compose.yml
compose_run "3/3 with docker-compose.postgres.yml" "$RUN-p" docker-compose.yml \
  docker-compose.postgres.yml

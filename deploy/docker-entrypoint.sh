#!/bin/sh
# Container start: make the data folders, apply the migrations, then run the command
# (supervisord by default). Migrations take a lock (a PostgreSQL advisory lock, or a
# lock file beside the SQLite database), so containers starting at once wait in turn
# and the later ones find nothing left to do. RUN_MIGRATIONS=false skips them.
set -eu
cd "$(dirname "$0")/.."

# need_writable PATH WHAT: stop with what to do when PATH (or the part of it that exists)
# is not writable. A host directory owned by root, mounted on /data, is the usual cause;
# without this the start ends in a bare "Permission denied" from mkdir or SQLite.
need_writable() {
  dir=$1
  while [ ! -e "$dir" ]; do dir=$(dirname "$dir"); done
  if [ ! -w "$dir" ]; then
    cat >&2 <<EOF
error: $dir is not writable by this container's user (uid $(id -u), gid $(id -g)); it holds $2.
  It belongs to $(stat -c '%u:%g' "$dir") with mode $(stat -c '%a' "$dir"). If a host directory is mounted there,
  give it to uid $(id -u): \`chown -R $(id -u):$(id -g) HOST_DIR\` on the host, or, with podman,
  mount it with :U (\`-v HOST_DIR:/data:U\`). A named volume needs neither. See docs/DEPLOY.md.
EOF
    exit 1
  fi
}

case "${DATABASE_URL:-}" in
  sqlite:///*)
    database=${DATABASE_URL#sqlite:///}
    need_writable "$(dirname "$database")" "the SQLite database"
    ;;
esac
if [ -n "${UPLOAD_FOLDER:-}" ]; then
  need_writable "$UPLOAD_FOLDER" "the uploads"
fi

mkdir -p "${INSTANCE_PATH:-instance}"
if [ -n "${UPLOAD_FOLDER:-}" ]; then
  mkdir -p "$UPLOAD_FOLDER"
fi

if [ "${RUN_MIGRATIONS:-true}" != "false" ]; then
  python manage.py db upgrade
fi

exec "$@"

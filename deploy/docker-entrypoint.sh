#!/bin/sh
# Container start: make the data folders, apply the migrations, then run the command
# (supervisord by default). Migrations take a lock (a PostgreSQL advisory lock, or a
# lock file beside the SQLite database), so containers starting at once wait in turn
# and the later ones find nothing left to do. RUN_MIGRATIONS=false skips them.
set -eu
cd "$(dirname "$0")/.."

mkdir -p "${INSTANCE_PATH:-instance}"
if [ -n "${UPLOAD_FOLDER:-}" ]; then
  mkdir -p "$UPLOAD_FOLDER"
fi

if [ "${RUN_MIGRATIONS:-true}" != "false" ]; then
  python manage.py db upgrade
fi

exec "$@"

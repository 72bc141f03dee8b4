# Coffer in one container: supervisord runs the waitress web server and WORKERS RQ
# workers. Redis (and PostgreSQL, if used) run beside it: see docker-compose.yml.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# libmagic reads the content type of uploads.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libmagic1 \
    && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 10001 coffer \
    && useradd --system --uid 10001 --gid coffer --home-dir /app --shell /usr/sbin/nologin coffer

WORKDIR /app

# Dependencies in their own layer: rebuilt only when requirements.txt changes.
COPY requirements.txt .
RUN pip install -r requirements.txt

# The code stays owned by root: the app cannot change itself.
COPY . .

# /data holds everything that must survive the container: the SQLite database and the
# uploads. INSTANCE_PATH (supervisord's socket and pid file) stays inside the
# container, so several containers may share the volume.
RUN mkdir -p /data /app/instance && chown coffer:coffer /data /app/instance

ENV APP_ENV=production \
    HOST=0.0.0.0 \
    PORT=8000 \
    WORKERS=2 \
    WEB_THREADS=4 \
    INSTANCE_PATH=/app/instance \
    DATABASE_URL=sqlite:////data/coffer.db \
    UPLOAD_FOLDER=/data/uploads

VOLUME ["/data"]
USER coffer
EXPOSE 8000

# supervisord passes SIGTERM on: waitress finishes the requests in hand, then each worker
# the job in hand. Give `docker stop` time for both (docker stop -t 100, or
# stop_grace_period in docker-compose.yml).
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "deploy/healthcheck.py"]

ENTRYPOINT ["deploy/docker-entrypoint.sh"]
CMD ["supervisord", "-c", "deploy/supervisord.conf"]

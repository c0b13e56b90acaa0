# sms-bridge as a container: `docker compose up` (with Postgres) or `docker build -t sms-bridge .`
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# A system user with no login shell: the app needs no privilege, and a compromise gets none.
# /data is the only place it may write (the SQLite database when DATABASE_URL is not set).
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin sms-bridge \
    && mkdir /data \
    && chown sms-bridge /data

# Installed into site-packages like any deployment; pyproject.toml names README.md as the
# package's readme, so the build needs it too. The source tree is not kept.
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot ./bot
RUN pip install . && rm -rf /src

# The example policy; mount your own over /app/config (compose does) or set SMS_BRIDGE_CONFIG.
WORKDIR /app
COPY config/bridge.yaml ./config/bridge.yaml

ENV SMS_BRIDGE_CONFIG=/app/config/bridge.yaml \
    DATABASE_URL=sqlite:////data/sms-bridge.db \
    PORT=3000
VOLUME ["/data"]
EXPOSE 3000

USER sms-bridge

# slim has no curl: ask /healthz with the Python that is already there. urlopen raises on
# anything but a 2xx, and an uncaught exception exits 1, which Docker counts as unhealthy.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as r; r.urlopen('http://127.0.0.1:' + os.environ.get('PORT', '3000') + '/healthz', timeout=4)"]

# Exec form, so the app is PID 1 and receives SIGTERM itself: it then lets in-flight sends
# finish for up to SHUTDOWN_GRACE_SECONDS (25 s), so give `docker stop` at least -t 30.
CMD ["sms-bridge", "run"]

# sms-bridge as a container: `docker compose up` (with Postgres) or `docker build -t sms-bridge .`
# An exact release and its digest (the multi-architecture index), so a rebuild gets the same
# Python and Debian on any platform; bump both on purpose.
FROM python:3.11.14-slim-bookworm@sha256:65a93d69fa75478d554f4ad27c85c1e69fa184956261b4301ebaf6dbb0a3543d

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# A system user with no login shell: the app needs no privilege, and a compromise gets none.
# /data is the only place it may write (the SQLite database when DATABASE_URL is not set).
RUN groupadd --system --gid 10001 sms-bridge \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin sms-bridge \
    && mkdir /data \
    && chown 10001:10001 /data

# The dependencies exactly as locked (versions and hashes, requirements.txt), in a layer of
# their own; then the package itself, with nothing left to resolve. pyproject.toml names
# README.md and LICENSE as its readme and licence, so the build needs them. The source tree
# is not kept.
WORKDIR /src
COPY requirements.txt ./
RUN pip install --require-hashes -r requirements.txt
COPY pyproject.toml README.md LICENSE ./
COPY bot ./bot
RUN pip install --no-deps . && rm -rf /src

# The example policy; mount your own over /app/config (compose does) or set SMS_BRIDGE_CONFIG.
WORKDIR /app
COPY config/bridge.yaml ./config/bridge.yaml

ENV SMS_BRIDGE_CONFIG=/app/config/bridge.yaml \
    DATABASE_URL=sqlite:////data/sms-bridge.db \
    PORT=3000
VOLUME ["/data"]
EXPOSE 3000

# By number: Kubernetes' runAsNonRoot can only verify a numeric user (the sms-bridge user).
USER 10001:10001

# slim has no curl: ask /healthz with the Python that is already there. urlopen raises on
# anything but a 2xx, and an uncaught exception exits 1, which Docker counts as unhealthy.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as r; r.urlopen('http://127.0.0.1:' + os.environ.get('PORT', '3000') + '/healthz', timeout=4)"]

# Exec form, so the app is PID 1 and receives SIGTERM itself: it then lets in-flight sends
# finish for up to SHUTDOWN_GRACE_SECONDS (25 s), so give `docker stop` at least -t 30.
CMD ["sms-bridge", "run"]

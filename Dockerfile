# Crosswatch: one image for every role (api, worker, scheduler).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    CROSSWATCH_DATABASE_URL=sqlite:////var/lib/crosswatch/crosswatch.db

WORKDIR /srv/crosswatch
COPY pyproject.toml README.md alembic.ini ./
COPY alembic ./alembic
COPY app ./app
# Editable install: the migrations in ./alembic stay beside the code that runs them.
RUN pip install -e . \
    && useradd --system --uid 10001 --home-dir /srv/crosswatch crosswatch \
    && mkdir -p /var/lib/crosswatch \
    && chown crosswatch /var/lib/crosswatch

USER crosswatch
EXPOSE 8000
VOLUME ["/var/lib/crosswatch"]

HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]

# `serve` runs `alembic upgrade head`, seeds an empty store, then serves.
CMD ["crosswatch", "serve", "--host", "0.0.0.0", "--port", "8000"]

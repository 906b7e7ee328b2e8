# A slim image that runs `morningpost serve` as a non-root user; mirrors the README's install.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1

WORKDIR /src
COPY pyproject.toml README.md alembic.ini ./
COPY app ./app
COPY email_templates ./email_templates
COPY migrations ./migrations
COPY examples ./examples
RUN pip install . && rm -rf /src

RUN useradd --create-home --uid 10001 morningpost \
    && mkdir -p /srv/morningpost/var \
    && chown -R morningpost /srv/morningpost
WORKDIR /srv/morningpost
USER morningpost

# The SQLite database, the signing key and the capture outbox live here.
VOLUME ["/srv/morningpost/var"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz').status != 200)"
CMD ["morningpost", "serve", "--host", "0.0.0.0", "--port", "8000"]

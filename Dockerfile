# ПК «ВОСХОД» — портал подключения кооперативов.
#   docker build -t voskhod-portal .
#   docker run -p 8000:8000 -v portal-data:/data -e PORTAL_SECRET_KEY=... voskhod-portal
# Production refuses to start without PORTAL_SECRET_KEY. For PostgreSQL set
# PORTAL_DATABASE_URL=postgresql://...; otherwise SQLite lives in /data.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# WeasyPrint's native libraries and fonts with Cyrillic glyphs.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz0b \
      fonts-dejavu-core fonts-dejavu-extra \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY . /app

# Install the portal, then build the documentation site into /app/site.
RUN pip install --no-cache-dir -e /app \
 && python -m mkdocs build --strict -d /app/site \
 && rm -rf /app/build

RUN groupadd --system portal \
 && useradd --system --gid portal --home-dir /home/portal --create-home --shell /usr/sbin/nologin portal \
 && mkdir -p /data \
 && chown portal:portal /data

ENV PORTAL_DATA_DIR=/data \
    PORTAL_ENV=production \
    PORTAL_SITE_DIR=/app/site

VOLUME /data
USER portal
EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status == 200 else 1)"]

CMD ["portal", "serve", "--host", "0.0.0.0", "--port", "8000"]

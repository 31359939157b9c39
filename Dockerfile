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
# DL3008 (pin versions in apt-get install) is ignored on purpose: Debian's mirrors keep only the current
# version of a package, so a pinned one breaks the build at its next security update. What is installed is
# fixed by the base image's release (bookworm); rebuild the image to get the updates.
# hadolint ignore=DL3008
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz0b \
      fonts-dejavu-core fonts-dejavu-extra \
 && rm -rf /var/lib/apt/lists/*

# The user the portal runs as, by number (DL3066: a name may not resolve outside the image, and
# Kubernetes' runAsNonRoot can only check a numeric USER).
RUN groupadd --system --gid 10001 portal \
 && useradd --system --no-log-init --uid 10001 --gid portal --home-dir /home/portal --create-home \
      --shell /usr/sbin/nologin portal \
 && mkdir -p /data \
 && chown portal:portal /data

WORKDIR /app
COPY . /app

# Install the portal, then build the documentation site into /app/site with the default tariff and
# base URL. The site belongs to the portal's user: `portal serve` rebuilds it at start when the
# container's PORTAL_TARIFF_* or PORTAL_BASE_URL differ from those it was built with (a stamp in it).
RUN pip install --no-cache-dir -e /app \
 && python -m portal.docs_site /app/site \
 && chown -R portal:portal /app/site \
 && rm -rf /app/build

ENV PORTAL_DATA_DIR=/data \
    PORTAL_ENV=production \
    PORTAL_SITE_DIR=/app/site

VOLUME /data
USER 10001:10001
EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status == 200 else 1)"]

CMD ["portal", "serve", "--host", "0.0.0.0", "--port", "8000"]

# gateway's container image: the server, php-cgi from Debian and the example sites.
#   docker build -t gateway .
#   docker run --rm -p 8080:8080 --stop-timeout 50 gateway
# The README's "Run in a container" says what is inside and how to mount your own config.
#
# Debian packages are pinned to bookworm's PHP metapackages (php-cgi=2:8.2+93): that holds
# PHP at 8.2 for the life of the release (DL3008) while the php8.2-* packages they depend
# on still take Debian's security updates; a pin on those would break the build as soon as
# the security archive replaced the pinned version. The base image names its Debian
# release for the same reason: python:3.11-slim alone moves to the next release.

# --- builder: wheels of gateway, of the example sites' packages and of every dependency,
# with compilers at hand ----------------------------------------------------------------
FROM python:3.11-slim-bookworm AS builder

RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential=12.9 \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY pyproject.toml README.md ./
COPY gateway/ gateway/
COPY adapters/ adapters/
COPY deploy/container/requirements.txt ./
RUN pip wheel --no-cache-dir --wheel-dir /wheels . -r requirements.txt \
    && cp requirements.txt /wheels/

# --- the image: no compilers, no pip cache, no apt lists -------------------------------
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    GATEWAY_HEALTH_URL=http://127.0.0.1:8080/_gateway/health \
    DJANGO_DB=/var/lib/gateway/django/db.sqlite3

# php-cgi (+ SQLite for the guestbook) for PHP routes; tini as PID 1 reaps the orphans a
# CGI script may leave and passes SIGTERM on to the gateway.
RUN apt-get update \
    && apt-get install -y --no-install-recommends php-cgi=2:8.2+93 php-sqlite3=2:8.2+93 tini=0.19.0-1+b3 \
    && rm -rf /var/lib/apt/lists/*

RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --find-links=/wheels /wheels/gateway-*.whl -r /wheels/requirements.txt

# A system user without a shell or home; its runtime_dir for php-cgi's socket, and
# /var/lib/gateway for the example's Django database.
RUN groupadd --system --gid 10001 gateway \
    && useradd --system --uid 10001 --gid gateway --no-create-home --shell /usr/sbin/nologin gateway \
    && install -d -o gateway -g gateway -m 0700 /run/gateway /var/lib/gateway

# The example sites, owned by root and read-only to the gateway user; the default config.
COPY apps_example/ /srv/apps_example/
COPY tools/example-setup.py /srv/tools/example-setup.py
COPY deploy/container/gateway.toml /etc/gateway/gateway.toml

# What `make run` does for Django: migrate, collectstatic (into the site, read-only), and the
# demo superuser admin/gateway-demo (change it: README, "Run in a container").
RUN python /srv/tools/example-setup.py \
    && chown -R gateway:gateway /var/lib/gateway \
    && chgrp gateway /srv/apps_example/guestbook-admin.htdigest

USER 10001:10001
WORKDIR /srv
EXPOSE 8080
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(os.environ['GATEWAY_HEALTH_URL'], timeout=4)"]

ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["gateway", "serve", "/etc/gateway/gateway.toml"]

# syntax=docker/dockerfile:1
# The netauto-statsd image that docker-compose.yml runs as app, worker and
# loadgen (one image, one role per service: `netauto-statsd demo --role ...`).
# tests/stack/test_install.py installs the package exactly as below, with the
# EXTRAS named here, in a clean virtualenv and runs the compose commands' CLI.
FROM python:3.11.13-slim-bookworm

# The one place the install extras are named (the install test reads it).
ARG EXTRAS=demo

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

# Only what `pip install` needs: packaging metadata (setup.cfg reads README.md
# as long_description) and the package; .dockerignore keeps the rest out.
WORKDIR /src
COPY pyproject.toml setup.cfg README.md ./
COPY netauto_statsd ./netauto_statsd
# The example NetAuto app (demo roles) is its own distribution, not in the library's wheel.
COPY examples ./examples
RUN pip install ".[${EXTRAS}]" ./examples \
    && rm -rf /src/build /src/*.egg-info /src/examples/build /src/examples/*.egg-info

# Non-root. /data is created here, owned by that user, so a named volume
# mounted on it (SQLite in compose) starts writable.
RUN useradd --system --uid 10001 --user-group --create-home --home-dir /home/netauto netauto \
    && mkdir /data \
    && chown netauto:netauto /data
USER netauto
WORKDIR /home/netauto

ENTRYPOINT ["netauto-statsd"]
CMD ["demo", "--role", "all"]

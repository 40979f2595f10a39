# noticebot: a slim image built from the same hashed lock as development and CI, running
# `noticebot serve` as a numeric non-root user (Kubernetes runAsNonRoot accepts it).
# Build: docker build --build-arg VERSION=0.1.0 --build-arg REVISION="$(git rev-parse HEAD)" .
# For production, pin PYTHON_IMAGE by digest (python:3.11-slim-bookworm@sha256:...).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
# The venv's pip is pinned; everything else comes from the lock, hash-checked.
RUN python -m venv /opt/noticebot \
 && /opt/noticebot/bin/python -m pip install "pip==26.3"
WORKDIR /src
COPY requirements.txt ./
RUN /opt/noticebot/bin/python -m pip install --require-hashes -r requirements.txt
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY handlers ./handlers
COPY storage ./storage
COPY config ./config
# The project itself: no dependencies resolved here (the lock did that), and the locked
# setuptools builds it (no build isolation, so nothing unpinned is fetched).
# The image holds exactly the locked set (so the SBOM describes it), setuptools included.
RUN /opt/noticebot/bin/python -m pip install --no-deps --no-build-isolation .

FROM ${PYTHON_IMAGE}
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG SOURCE=""
LABEL org.opencontainers.image.title="noticebot" \
      org.opencontainers.image.description="Walks officers through ICE Directive 15006.1 before an INTERPOL notice is relied on, and keeps the record." \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="LicenseRef-Proprietary"
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/noticebot/bin:$PATH \
    NOTICEBOT_PORT=3000
COPY --from=build /opt/noticebot /opt/noticebot
# /app is the working folder (a SQLite file, exports) and belongs to the run-time user.
RUN install -d -o 10001 -g 10001 -m 0750 /app
WORKDIR /app
USER 10001:10001
EXPOSE 3000
# /readyz (database reachable, schema at head, sweep and delivery threads alive) is served by
# `noticebot serve`; Kubernetes uses its own probes (deploy/k8s), compose and plain Docker this.
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/readyz' % os.environ.get('NOTICEBOT_PORT', '3000'), timeout=2)"]
CMD ["noticebot", "serve"]

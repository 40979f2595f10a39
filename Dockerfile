# noticebot: slim image, non-root, `noticebot serve` by default.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY handlers ./handlers
COPY storage ./storage
COPY config ./config
RUN python -m pip install --no-cache-dir --upgrade pip \
 && python -m pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    NOTICEBOT_PORT=3000
RUN groupadd --system noticebot \
 && useradd --system --gid noticebot --home-dir /app --create-home noticebot
COPY --from=build /wheels /wheels
RUN python -m pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
WORKDIR /app
USER noticebot
EXPOSE 3000
# /healthz is served by `noticebot serve` (the Slack surface).
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s --retries=3 \
  CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('NOTICEBOT_PORT', '3000'), timeout=2)" || exit 1
CMD ["noticebot", "serve"]

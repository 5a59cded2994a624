# The cachewatch exporter (and demo) image: `cachewatch serve` by default.
FROM python:3.11.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /opt/cachewatch
COPY pyproject.toml README.md ./
COPY exporter ./exporter
RUN pip install '.[redis,tracing]' \
    && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin cachewatch

# Never run as root.
USER 10001:10001
EXPOSE 10287
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:10287/-/healthy', timeout=4)"]
ENTRYPOINT ["cachewatch"]
CMD ["serve"]

# dlp: SMTP relay, HTTP scan API and /metrics (`dlp serve`).
# Not built in this repository's CI (no Docker engine there): linted with hadolint.
#   docker build -t dlp .
#   docker run -p 10025:10025 -p 8080:8080 -v dlp-state:/var/lib/dlp dlp
# Policies, detectors and a default configuration (/etc/dlp/dlp.yaml) are baked in; mount a
# folder over /etc/dlp/policies (or add one to DLP_POLICIES) and /etc/dlp/detectors to
# override or extend them.

FROM python:3.11-slim-bookworm AS build
WORKDIR /src
RUN pip install --no-cache-dir build==1.2.2
COPY pyproject.toml README.md ./
COPY dlp ./dlp
COPY detectors ./detectors
COPY policies ./policies
RUN python -m build --wheel --outdir /dist

FROM python:3.11-slim-bookworm
# libmagic1 for content sniffing; Debian's security updates are wanted, so the
# package is not pinned to a version.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends libmagic1 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 dlp \
 && useradd --system --uid 10001 --gid dlp --home-dir /var/lib/dlp --shell /usr/sbin/nologin dlp \
 && install -d -o dlp -g dlp -m 0700 /var/lib/dlp \
 && install -d -m 0755 /etc/dlp/detectors
COPY --from=build /dist/ /tmp/dist/
RUN pip install --no-cache-dir /tmp/dist/*.whl && rm -rf /tmp/dist
COPY policies /etc/dlp/policies
# Defaults as a file, not DLP_* ENV: the environment overrides any --config file, so
# ENV here would override the file a deployment passes (deploy/kubernetes).
COPY deploy/docker/dlp.yaml /etc/dlp/dlp.yaml
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
USER 10001:10001
WORKDIR /var/lib/dlp
VOLUME ["/var/lib/dlp"]
EXPOSE 10025 8080
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"]
ENTRYPOINT ["dlp"]
CMD ["--config", "/etc/dlp/dlp.yaml", "serve"]

# One image for every service: `docker build --build-arg SERVICE=intake -t <registry>/villagecounsel:<version> .`
# The dashboard's page serves Apache ECharts itself (no CDN), from the npm registry at build time.
# Python dependencies come from requirements.lock (versions and hashes), so that two builds of one commit
# install the same packages. Base images are pinned to a version; pin their digests in your registry.
# Checked by tests/unit/test_deploy_dockerfile.py (rules of the kind hadolint checks; hadolint itself is
# not installable from the registries this project uses).
FROM node:20.20.2-slim AS web
WORKDIR /web
COPY services/dashboard/web/package.json services/dashboard/web/package-lock.json ./
RUN npm ci --no-audit --no-fund

FROM python:3.11.13-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY requirements.lock ./
RUN pip install --no-cache-dir --require-hashes --no-deps -r requirements.lock
COPY pyproject.toml README.md ./
COPY contracts ./contracts
COPY plumbing ./plumbing
COPY services ./services
COPY devstack ./devstack
RUN pip install --no-cache-dir --no-deps . && useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin villagecounsel
COPY --from=web /web/node_modules/echarts/dist/echarts.min.js /app/web/echarts.min.js
ENV VC_ECHARTS_FILE=/app/web/echarts.min.js
# Numeric, so that Kubernetes can check runAsNonRoot without reading /etc/passwd.
USER 10001:10001
ARG SERVICE=intake
ENV SERVICE=${SERVICE} VC_HTTP_HOST=0.0.0.0 VC_HTTP_PORT=8000
EXPOSE 8000
CMD ["sh", "-c", "exec python -m services.$SERVICE"]

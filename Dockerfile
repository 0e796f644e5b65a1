# One image for every service: `docker build --build-arg SERVICE=intake .`
# The dashboard's page serves Apache ECharts itself (no CDN), from the npm registry at build time.
FROM node:20-slim AS web
WORKDIR /web
COPY services/dashboard/web/package.json services/dashboard/web/package-lock.json ./
RUN npm ci --no-audit --no-fund

FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY contracts ./contracts
COPY plumbing ./plumbing
COPY services ./services
COPY devstack ./devstack
RUN pip install --no-cache-dir . && useradd --uid 10001 --no-create-home villagecounsel
COPY --from=web /web/node_modules/echarts/dist/echarts.min.js /app/web/echarts.min.js
ENV VC_ECHARTS_FILE=/app/web/echarts.min.js
USER 10001
ARG SERVICE=intake
ENV SERVICE=${SERVICE} VC_HTTP_HOST=0.0.0.0 VC_HTTP_PORT=8000
EXPOSE 8000
CMD ["sh", "-c", "exec python -m services.$SERVICE"]

# One image for every service: `docker build --build-arg SERVICE=intake .`
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY contracts ./contracts
COPY plumbing ./plumbing
COPY services ./services
COPY devstack ./devstack
RUN pip install --no-cache-dir . && useradd --uid 10001 --no-create-home villagecounsel
USER 10001
ARG SERVICE=intake
ENV SERVICE=${SERVICE} VC_HTTP_HOST=0.0.0.0 VC_HTTP_PORT=8000
EXPOSE 8000
CMD ["sh", "-c", "exec python -m services.$SERVICE"]

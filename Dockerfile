# didchat's image, used by docker-compose.yml (docs/several-nodes.md).
#
# Three stages: `client` runs npm for the browser's socket.io-client, `build` installs didchat into
# a virtualenv, and the runtime stage gets only that virtualenv and socket.io-client's dist folder:
# no Node.js, no compiler, no pip cache at run time. It runs as an unprivileged user; its data and
# scenario folders are volumes; HEALTHCHECK asks /readyz, so a node that lost its database or is
# shutting down is reported unhealthy (and a load balancer stops sending it work).

FROM node:22-slim AS client
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund --ignore-scripts

FROM python:3.11-slim AS build
WORKDIR /src
RUN python -m venv /opt/didchat
COPY pyproject.toml README.md ./
COPY gateway gateway
COPY chat chat
COPY scenarios scenarios
RUN /opt/didchat/bin/pip install --no-cache-dir .

FROM python:3.11-slim
RUN useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin didchat \
 && mkdir -p /app/data /app/scenarios /etc/didchat \
 && chown didchat:didchat /app/data /app/scenarios
COPY --from=build /opt/didchat /opt/didchat
COPY --from=client /src/node_modules/socket.io-client/dist /opt/socket.io-client/dist
COPY --from=client /src/node_modules/swagger-ui-dist/swagger-ui-bundle.js /src/node_modules/swagger-ui-dist/swagger-ui.css \
     /opt/node_modules/swagger-ui-dist/
ENV PATH=/opt/didchat/bin:$PATH \
    DIDCHAT_VENDOR_DIR=/opt/socket.io-client/dist \
    DIDCHAT_NODE_MODULES=/opt/node_modules \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /app
USER didchat
VOLUME ["/app/data", "/app/scenarios"]
EXPOSE 8080
# urllib raises on 503, so the probe fails while the node is not ready; no curl in the slim image.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:8080/readyz', timeout=2)"]
# The config says host 0.0.0.0 and port 8080 (deploy/didchat.yaml); json logs, one object a line.
CMD ["didchat", "run", "--config", "/etc/didchat/didchat.yaml", "--log-format", "json"]

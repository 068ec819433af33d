# didchat service image (used by docker-compose.yml).
FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends nodejs npm && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund
COPY pyproject.toml README.md ./
COPY gateway gateway
COPY chat chat
COPY scenarios scenarios
RUN pip install --no-cache-dir . && useradd --system --home-dir /app didchat && mkdir -p /app/data && chown didchat /app/data
ENV DIDCHAT_VENDOR_DIR=/app/node_modules/socket.io-client/dist PYTHONUNBUFFERED=1
USER didchat
EXPOSE 8080
CMD ["didchat", "run", "--config", "/etc/didchat/didchat.yaml", "--host", "0.0.0.0", "--log-format", "json"]

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
RUN pip install --no-cache-dir .
ENV DIDCHAT_VENDOR_DIR=/app/node_modules/socket.io-client/dist
EXPOSE 8080
CMD ["didchat", "run", "--config", "/etc/didchat/didchat.yaml"]

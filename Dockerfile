# splade-bridge with the query-rewriting service and the stream worker (docker-compose's `serve` and
# `kafka` profiles).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY bridge ./bridge
COPY mappings ./mappings
RUN pip install --no-cache-dir '.[serve,kafka]'
EXPOSE 8080
ENTRYPOINT ["splade-bridge"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8080"]

# splade-bridge with the query-rewriting service (used by docker-compose's `serve` profile).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY bridge ./bridge
COPY mappings ./mappings
RUN pip install --no-cache-dir '.[serve]'
EXPOSE 8080
ENTRYPOINT ["splade-bridge"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8080"]

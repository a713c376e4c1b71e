# splade-bridge with the query-rewriting service and the stream worker (docker-compose's `serve` and
# `kafka` profiles, deploy/kubernetes). CPU-only torch, ONNX Runtime (the `auto` backend), the Elasticsearch
# and AWS clients; dependencies in their own layers so a code change rebuilds only the last one; runs as an
# unprivileged user whose cache directories exist (a volume mounted there is created owned by that user).
# No HEALTHCHECK: the roles answer on different ports (serve :8080, a worker's --metrics-port), so each
# deployment probes its own: /healthz (liveness) and /readyz (readiness) — see docker-compose.yml, deploy/.
FROM python:3.11-slim
WORKDIR /app
# 1. torch from its CPU wheel index (the default PyPI wheel pulls ~3 GB of CUDA libraries a CPU service never uses)
RUN pip install --no-cache-dir "torch>=2.6.0" --index-url https://download.pytorch.org/whl/cpu
# 2. every other dependency, read from pyproject.toml alone: this layer changes only when the dependencies do
COPY pyproject.toml ./
RUN python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; \
o = p['optional-dependencies']; \
deps = p['dependencies'] + o['serve'] + o['kafka'] + o['onnx'] + o['elasticsearch'] + o['aws']; \
print('\n'.join(d for d in deps if not d.startswith('torch')))" > /tmp/requirements.txt \
 && pip install --no-cache-dir -r /tmp/requirements.txt
# 3. the package itself
COPY README.md ./
COPY bridge ./bridge
COPY mappings ./mappings
RUN pip install --no-cache-dir --no-deps . && useradd --create-home --uid 10001 splade \
 && mkdir -p /home/splade/.cache/huggingface /home/splade/.cache/splade-bridge \
 && chown -R splade:splade /home/splade/.cache
USER splade
# in a container the endpoints must be reachable from outside it
ENV HF_HOME=/home/splade/.cache/huggingface BRIDGE_WORKER_METRICS_HOST=0.0.0.0 BRIDGE_SERVE_HOST=0.0.0.0
EXPOSE 8080 9108
ENTRYPOINT ["splade-bridge"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8080"]

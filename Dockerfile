# splade-bridge with the query-rewriting service and the stream worker (docker-compose's `serve` and
# `kafka` profiles). CPU-only torch; dependencies in their own layers so a code change rebuilds only the
# last one; runs as an unprivileged user; /healthz as the health check.
FROM python:3.11-slim
WORKDIR /app
# 1. torch from its CPU wheel index (the default PyPI wheel pulls ~3 GB of CUDA libraries a CPU service never uses)
RUN pip install --no-cache-dir "torch>=2.6.0" --index-url https://download.pytorch.org/whl/cpu
# 2. every other dependency, read from pyproject.toml alone: this layer changes only when the dependencies do
COPY pyproject.toml ./
RUN python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; \
deps = p['dependencies'] + p['optional-dependencies']['serve'] + p['optional-dependencies']['kafka']; \
print('\n'.join(d for d in deps if not d.startswith('torch')))" > /tmp/requirements.txt \
 && pip install --no-cache-dir -r /tmp/requirements.txt
# 3. the package itself
COPY README.md ./
COPY bridge ./bridge
COPY mappings ./mappings
RUN pip install --no-cache-dir --no-deps . && useradd --create-home --uid 10001 splade
USER splade
ENV HF_HOME=/home/splade/.cache/huggingface
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2).status != 200)"]
ENTRYPOINT ["splade-bridge"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8080"]

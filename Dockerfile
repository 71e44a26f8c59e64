# The image of the workers and the codec server in docker-compose.yml.
FROM python:3.11-slim
WORKDIR /app
RUN pip install --no-cache-dir uv
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev
COPY . .
ENV PATH="/app/.venv/bin:$PATH"
# The worker deployment build this image is (docs/deploys.md): runs started on it stay on it.
ARG BUILD_ID=local
ENV DURABLE_AGENTS_BUILD_ID=$BUILD_ID
CMD ["python", "worker.py"]

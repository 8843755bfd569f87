# syntax=docker/dockerfile:1
# The `agora` node as a container image: built with the Rust toolchain, run on a slim Debian
# with only CA certificates added. `docker compose up --build` (see docker-compose.yml) builds
# it; on its own: `docker build -t agora .` and
# `docker run -e AGORA_DRIVER_TOKEN=... -p 8080:8080 -v agora-data:/data agora`.

FROM rust:1.95-bookworm AS builder
WORKDIR /src
COPY . .
# BuildKit cache mounts keep the crates.io downloads and the compiled dependencies between
# builds, so a source change recompiles only Agora's own crates. They are not part of any
# layer, hence the copy of the binary out of the cached target directory.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked --bin agora \
    && install -D -m 0755 target/release/agora /out/agora

FROM debian:bookworm-slim
# ca-certificates: plugins and deliveries call HTTPS platforms and drivers (rustls, native roots).
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
# /data is created and owned before VOLUME, so a new named volume starts out owned by `agora`.
RUN groupadd --system --gid 10001 agora \
    && useradd --system --uid 10001 --gid agora --home-dir /data --no-create-home \
       --shell /usr/sbin/nologin agora \
    && mkdir -p /data \
    && chown agora:agora /data
COPY --from=builder /out/agora /usr/local/bin/agora

ENV AGORA_LISTEN=0.0.0.0:8080 \
    AGORA_DATA_DIR=/data
USER agora
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8080
# Ready, not just alive: /readyz answers 200 only once the node serves (503 while starting,
# shutting down, or after storage refused a write). No curl in the image: bash's /dev/tcp
# speaks the one request, on the port of AGORA_LISTEN.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/${AGORA_LISTEN##*:} && printf 'GET /readyz HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n' >&3 && read -r status <&3 && [[ $status == *' 200 '* ]]"]
# SIGTERM (docker stop) drains requests, flushes storage and exits 0.
STOPSIGNAL SIGTERM
ENTRYPOINT ["agora", "serve"]

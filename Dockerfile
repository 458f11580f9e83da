# fundwatch in a container: build in the Rust image, run in slim Debian as a non-root user.
#
#   docker build -t fundwatch .
#   docker run --rm fundwatch --help
#   docker compose up -d        # with Kafka, Prometheus and Grafana (see docker-compose.yml)
#
# librdkafka is compiled from source by rdkafka-sys (TLS via OpenSSL, zlib), so the build
# stage needs a C toolchain and the OpenSSL headers; the runtime only libssl and CA roots.

FROM rust:1-bookworm AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      build-essential cmake pkg-config libssl-dev perl python3 \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# The cache mounts keep the registry and the target dir between builds (BuildKit).
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin fundwatch \
 && install -D -m 0755 target/release/fundwatch /out/fundwatch

FROM debian:bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ca-certificates libssl3 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 fundwatch \
 && useradd --system --uid 10001 --gid fundwatch --home-dir /var/lib/fundwatch --create-home fundwatch
COPY --from=build /out/fundwatch /usr/local/bin/fundwatch
COPY config/fundwatch.toml /etc/fundwatch/fundwatch.toml
USER 10001:10001
WORKDIR /var/lib/fundwatch
# /metrics, /healthz, /readyz (service.listen must be 0.0.0.0:9898 inside a container).
EXPOSE 9898
ENTRYPOINT ["/usr/local/bin/fundwatch"]
CMD ["run", "--config", "/etc/fundwatch/fundwatch.toml"]

# The runner image: `streaming-runner` on a distroless base, as the fargate and eks
# deployments run it (`ghcr.io/lakestream/streaming-runner:<provider version>` by default).
#
#   docker build -t streaming-runner .
#   docker run --rm --read-only streaming-runner --help
#
# The runner keeps nothing on local disk (a huge transaction is flushed to the lake in parts),
# so the root filesystem may be read-only; it runs as an unprivileged user and needs no
# shell. TLS roots come from the image's CA bundle.

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p streaming-runner \
 && install -D target/release/streaming-runner /out/streaming-runner

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/streaming-runner /usr/local/bin/streaming-runner
USER nonroot:nonroot
ENV LAKESTREAM_LOG_FORMAT=json
ENTRYPOINT ["/usr/local/bin/streaming-runner"]
CMD ["run"]

# nats-server image: one static binary (CGO off) compiled on the host by
# hack/docker-build.sh, which also prepares rootfs/ (CA certificates when the
# host has them). BASE_IMAGE is scratch by default so that nothing is pulled;
# gcr.io/distroless/static:nonroot works as well.
ARG BASE_IMAGE=scratch
FROM ${BASE_IMAGE}
LABEL org.opencontainers.image.title="nats-server" \
      org.opencontainers.image.description="NATS server built from github.com/nats-io/nats-server/v2, for development and e2e" \
      org.opencontainers.image.source="https://github.com/recbuf/recbuf"
COPY rootfs/ /
COPY nats-server /nats-server
# Numeric so that runAsNonRoot can verify it without an /etc/passwd.
USER 65532:65532
ENTRYPOINT ["/nats-server"]

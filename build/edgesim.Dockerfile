# edgesim image: the edge simulator (ENTRYPOINT) plus recbufctl, a small
# consumer CLI, so that demos and the e2e suite can publish and consume from
# pods with one image. Both are static binaries compiled on the host by
# hack/docker-build.sh. BASE_IMAGE is scratch by default so that nothing is
# pulled; gcr.io/distroless/static:nonroot works as well.
ARG BASE_IMAGE=scratch
FROM ${BASE_IMAGE}
LABEL org.opencontainers.image.title="edgesim" \
      org.opencontainers.image.description="recbuf edge simulator and consumer CLI (recbufctl)" \
      org.opencontainers.image.source="https://github.com/recbuf/recbuf"
COPY rootfs/ /
COPY edgesim recbufctl /
# Numeric so that runAsNonRoot can verify it without an /etc/passwd.
USER 65532:65532
ENTRYPOINT ["/edgesim"]

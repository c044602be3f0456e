# grconnect as a container: a static binary in an empty image, run as a non-root
# user, its database and key in the /data volume. See docs/deploy.md.
#
#   docker build --build-arg VERSION=v1.4.0 --build-arg COMMIT=$(git rev-parse HEAD) -t grconnect:v1.4.0 .
#   docker run -d --name grconnect -p 8080:8080 -v grconnect-data:/data \
#     -e GRCONNECT_BASE_URL=https://connect.example.com grconnect:v1.4.0

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=devel
ARG COMMIT=
ARG DATE=
RUN date=${DATE:-$(date -u +%Y-%m-%dT%H:%M:%SZ)} && \
    CGO_ENABLED=0 go build -trimpath -buildvcs=false \
      -ldflags="-s -w -X github.com/grconnect/grconnect/buildinfo.version=${VERSION} -X github.com/grconnect/grconnect/buildinfo.commit=${COMMIT} -X github.com/grconnect/grconnect/buildinfo.date=${date}" \
      -o /out/grconnect . && \
    /out/grconnect version
# The final image has no shell: make its directories here. 65532 is the user that
# runs grconnect (no name, no home); /data is its only writable place besides /tmp.
RUN mkdir -p /out/data /out/tmp && chown 65532:65532 /out/data && chmod 0700 /out/data && chmod 1777 /out/tmp

FROM scratch
# TLS roots for GetResponse and webhooks; time zones for the dashboard.
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /usr/share/zoneinfo /usr/share/zoneinfo
COPY --from=build /out/tmp /tmp
COPY --from=build --chown=65532:65532 /out/data /data
COPY --from=build /out/grconnect /usr/local/bin/grconnect
ENV GRCONNECT_ADDR=:8080 \
    GRCONNECT_DATABASE=/data/grconnect.db \
    GRCONNECT_LOG_FORMAT=json \
    TMPDIR=/tmp
USER 65532:65532
VOLUME ["/data"]
EXPOSE 8080
# /readyz: the database answers, has the schema and takes a write.
HEALTHCHECK --interval=30s --timeout=6s --start-period=20s --retries=3 CMD ["/usr/local/bin/grconnect", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/grconnect"]
CMD ["serve"]

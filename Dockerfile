# Gatehouse container image.
#
#   docker build -t gatehouse .
#   docker run --rm -p 4180:4180 --add-host=host.docker.internal:host-gateway \
#     -e GH_CLIENT_ID=... -e GH_CLIENT_SECRET=... \
#     -e GATEHOUSE_SESSION_SECRET="$(gatehouse gen-secret)" \
#     -e GITHUB_USERS=octocat -e GATEHOUSE_PUBLIC_URL=http://localhost:4180 \
#     -e GATEHOUSE_UPSTREAM=http://host.docker.internal:8080 \
#     gatehouse
#
# The baked-in config is deploy/docker/gatehouse.toml (it lists the variables it reads).

# ---- build ------------------------------------------------------------------------------
FROM rust:1-bookworm AS builder

# Pingora builds zlib-ng with cmake.
RUN apt-get update \
 && apt-get install -y --no-install-recommends cmake \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /build

# Dependencies first, against stub sources, so this layer is reused until a Cargo.toml or
# Cargo.lock change. Declared [[bench]] targets get stubs too (cargo checks they exist).
COPY Cargo.toml Cargo.lock ./
# A patched dependency (see vendor/pingora-proxy/GATEHOUSE-PATCH.md), needed to resolve at all.
COPY vendor vendor
# The workspace's other crates (see Cargo.toml): manifests now, sources with the rest.
COPY crates/base/Cargo.toml crates/base/
COPY crates/client/Cargo.toml crates/client/
COPY crates/mock-github/Cargo.toml crates/mock-github/
RUN mkdir -p src benches \
 && echo 'fn main() {}' > src/main.rs \
 && touch src/lib.rs \
 && for c in crates/*/; do mkdir -p "$c/src" && touch "$c/src/lib.rs"; done \
 && for b in $(sed -n '/^\[\[bench\]\]/,/^name/s/^name *= *"\(.*\)".*/\1/p' Cargo.toml); do \
      echo 'fn main() {}' > "benches/$b.rs"; \
    done \
 && cargo build --profile production --locked \
 && rm -rf src benches crates/*/src

# The real sources. `touch` makes sure cargo rebuilds them rather than trusting the stubs.
COPY . .
RUN touch src/main.rs src/lib.rs crates/*/src/lib.rs \
 && cargo build --profile production --locked --bin gatehouse \
 && cp target/production/gatehouse /usr/local/bin/gatehouse \
 && strip /usr/local/bin/gatehouse

# ---- run --------------------------------------------------------------------------------
# glibc, libgcc and CA certificates; no shell, no package manager. Runs as uid 65532.
FROM gcr.io/distroless/cc-debian12:nonroot

COPY --from=builder /usr/local/bin/gatehouse /usr/local/bin/gatehouse
COPY deploy/docker/gatehouse.toml /etc/gatehouse/gatehouse.toml
COPY config.example.toml /etc/gatehouse/config.example.toml

ENV GATEHOUSE_CONFIG=/etc/gatehouse/gatehouse.toml
USER nonroot:nonroot
EXPOSE 4180

# No shell or curl in this image: the binary checks itself. `gatehouse healthcheck` GETs
# http://127.0.0.1:4180/ping and exits 0 on 200, else 1 with the reason. When you change
# GATEHOUSE_LISTEN's port, set GATEHOUSE_HEALTHCHECK_URL to match.
HEALTHCHECK --interval=30s --timeout=5s --start-period=5s --retries=3 \
  CMD ["/usr/local/bin/gatehouse", "healthcheck"]

ENTRYPOINT ["/usr/local/bin/gatehouse"]
CMD ["run"]

# One image recipe for the services and the gateway; SERVICE picks which. Build from the repository
# root (each needs the workspace):
#   docker build --build-arg SERVICE=products  --build-arg PORT=3001 -t catalogo/products .
#   docker build --build-arg SERVICE=inventory --build-arg PORT=3002 -t catalogo/inventory .
#   docker build --build-arg SERVICE=gateway   --build-arg PORT=3000 -t catalogo/gateway .
# The gateway's image holds no console: mount a built console/dist at /app/console/dist (or set
# CONSOLE_DIR); without one, / answers a page saying how to build it.
ARG SERVICE=products

# --- build: compile the shared kit, then the service (its build resolves @catalogo/kit to kit's dist/)
FROM node:20-slim AS build
ARG SERVICE
WORKDIR /app
# Every workspace's package.json, or `npm ci` finds the lock file out of sync with the workspaces.
COPY package.json package-lock.json tsconfig.json ./
COPY packages/kit/package.json packages/kit/
COPY services/products/package.json services/products/
COPY services/inventory/package.json services/inventory/
COPY services/gateway/package.json services/gateway/
# No install script is needed to compile (they only prepare tsx's esbuild and the embedded PostgreSQL).
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY packages/kit/tsconfig.build.json packages/kit/
COPY packages/kit/src packages/kit/src
# Every workspace's sources (the test folders are not sent): one COPY whether or not the service
# has migrations. The gateway has no database, hence none: an empty folder keeps the runtime uniform.
COPY services services
RUN mkdir -p services/${SERVICE}/migrations
RUN npx tsc -p packages/kit/tsconfig.build.json && npx tsc -p services/${SERVICE}/tsconfig.build.json

# --- deps: the production dependencies of this service and of the kit it depends on, nothing else
# (each workspace declares what it imports; the root holds only development tooling).
FROM node:20-slim AS deps
ARG SERVICE
WORKDIR /app
COPY package.json package-lock.json ./
COPY packages/kit/package.json packages/kit/
COPY services/products/package.json services/products/
COPY services/inventory/package.json services/inventory/
COPY services/gateway/package.json services/gateway/
RUN npm ci --omit=dev --workspace services/${SERVICE} \
      --ignore-scripts --no-audit --no-fund

# --- runtime
FROM node:20-slim
ARG SERVICE
ARG PORT=3001
ENV NODE_ENV=production PORT=${PORT} HOST=0.0.0.0 OTEL_SERVICE_NAME=${SERVICE}
WORKDIR /app
COPY --from=deps /app/node_modules node_modules
# node_modules/@catalogo/kit is a symlink to packages/kit, whose package.json maps imports to dist/.
COPY --from=build /app/packages/kit/package.json packages/kit/
COPY --from=build /app/packages/kit/dist packages/kit/dist
COPY --from=build /app/services/${SERVICE}/package.json services/${SERVICE}/
COPY --from=build /app/services/${SERVICE}/dist services/${SERVICE}/dist
# Applied at start-up; found as ../migrations from dist/.
COPY --from=build /app/services/${SERVICE}/migrations services/${SERVICE}/migrations
# Root owns the files, the service runs as the image's unprivileged `node` user and cannot change them.
USER node
WORKDIR /app/services/${SERVICE}
EXPOSE ${PORT}
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + process.env.PORT + '/health').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# Tracing loads first, so that it can patch pg and http as they load; it does nothing (and loads no
# OpenTelemetry module) unless OTEL_EXPORTER_OTLP_ENDPOINT is set.
CMD ["node", "--import", "@catalogo/kit/tracing", "dist/server.js"]

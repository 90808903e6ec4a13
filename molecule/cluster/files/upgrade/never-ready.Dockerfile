# Drill (b): a release (v1 underneath, so no migration) that starts but never becomes
# ready: `serve` only sleeps, so the rolling upgrade must put the host back on its
# previous image. Every other command (the one-off jobs upgrade.yml runs before it
# switches a host, such as reading the release's migrations) works as in v1.
ARG BASE=registry:5000/nb-molecule/noticeboard:v1
FROM ${BASE}
ENTRYPOINT ["/bin/sh", "-c", "if [ \"$1\" = serve ]; then exec sleep 3600; fi; exec docker-entrypoint.sh \"$@\"", "--"]
CMD ["serve"]

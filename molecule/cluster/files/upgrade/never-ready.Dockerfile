# Drill (b): a release (v1 underneath, so no migration) that starts but never becomes
# ready (it serves nothing), so the rolling upgrade must put the host back on its
# previous image.
ARG BASE=registry:5000/nb-molecule/noticeboard:v1
FROM ${BASE}
ENTRYPOINT ["/bin/sh", "-c", "exec sleep 3600", "--"]

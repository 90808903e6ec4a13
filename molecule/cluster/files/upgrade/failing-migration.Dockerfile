# Drill (a): a release whose migration fails half-way: on MariaDB its first statement
# (a new column) is committed before the second one fails.
ARG BASE=registry:5000/nb-molecule/noticeboard:v1
FROM ${BASE}
COPY next_fails_half_way.py /opt/app/noticeboard/migrations/versions/

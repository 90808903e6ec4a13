"""archive mode: the image arrives as a file from the controller and the app runs from it."""

import json

from verifylib import http

DIR = "/opt/noticeboard"


def test_the_archive_was_shipped_readable_by_root_only(host):
    archive = host.file(f"{DIR}/images/noticeboard-archive-v1.tar")
    assert archive.exists and archive.size > 10_000_000
    assert (archive.user, archive.mode) == ("root", 0o600)


def test_the_loaded_image_runs_the_app(host):
    state = json.loads(host.check_output("docker inspect noticeboard-app-1"))[0]
    assert state["Config"]["Image"] == "noticeboard-archive:v1"
    assert state["State"]["Health"]["Status"] == "healthy"


def test_the_host_never_asked_a_registry(host):
    # Nothing in the engine's image list carries a registry name.
    images = host.check_output("docker image ls --format '{{.Repository}}'").split()
    assert images and all("/" not in name for name in images)


def test_the_app_answers_readyz_on_the_chosen_port(host):
    assert http(host, "GET", "http://127.0.0.1:8080/readyz").status == 200

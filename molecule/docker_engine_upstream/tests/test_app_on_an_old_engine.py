"""The app role on an engine older than Docker 25: this host's stand-in engine is Debian
12's 20.10 (API 1.41), with a current Compose plugin. Compose would refuse the health
check's start interval only when it starts the app, after the role had changed the host;
the preflight refuses first, naming the variable, and nothing of the app is created."""

from verifylib import group_inventory, run_playbook

HOST = "nb-mol-docker_engine_upstream"
APP = {
    "noticeboard_image_source": "registry",
    "noticeboard_image": "registry:5000/nb-molecule/noticeboard",
    "noticeboard_image_tag": "v1",
    "noticeboard_registry_insecure": True,
    # Test-only secrets.
    "noticeboard_secret_key": "molecule-only-7c1e9a3f5b2d8e4a6c0f1b3d5e7a9c2e",
    "noticeboard_admin_password": "molecule-only-owner-9d2b",
}


def test_the_preflight_refuses_a_start_interval_the_engine_cannot_run(host):
    assert host.check_output("docker version --format '{{.Server.APIVersion}}'") == "1.41"
    run = run_playbook(
        "deploy", extra_vars=APP, inventories=[group_inventory(HOST, ["app"])], ok=False
    )
    said = run.said
    assert "Refuse a health check start interval the engine cannot run" in said, run.tail()
    assert "speaks API 1.41" in said and "noticeboard_health_start_interval" in said, run.tail()
    # Nothing of the app: no user, no directory, no container, no image pulled.
    assert not host.user("noticeboard").exists
    assert not host.file("/opt/noticeboard").exists
    project = "label=com.docker.compose.project=noticeboard"
    assert host.check_output("docker ps -aq --filter %s", project) == ""
    images = host.check_output("docker image ls --format '{{.Repository}}'")
    assert "nb-molecule/noticeboard" not in images

    # Without the start interval the same engine passes the preflight: a preview (check
    # mode, which changes nothing) goes on to the configuration.
    preview = run_playbook(
        "deploy",
        extra_vars={**APP, "noticeboard_health_start_interval": ""},
        inventories=[group_inventory(HOST, ["app"])],
        check_mode=True,
        ok=None,
    )
    configure = "TASK [noticeboard.deploy.app : Create the system user]"
    assert configure in preview.stdout, preview.tail()
    assert not host.user("noticeboard").exists
    assert not host.file("/opt/noticeboard").exists

"""With source=upstream the role writes Docker's repository in deb822 format."""


def _sources(host):
    fields = {}
    for line in host.file("/etc/apt/sources.list.d/docker.sources").content_string.splitlines():
        if ":" in line and not line.startswith("#"):
            key, value = line.split(":", 1)
            fields[key.strip()] = value.strip()
    return fields


def test_repository_file_is_deb822_and_root_owned(host):
    f = host.file("/etc/apt/sources.list.d/docker.sources")
    assert f.user == "root" and f.mode == 0o644
    assert not host.file("/etc/apt/sources.list.d/docker.list").exists


def test_repository_points_at_dockers_debian_suite_for_this_release(host):
    fields = _sources(host)
    assert fields["Types"] == "deb"
    assert fields["URIs"] == "https://download.docker.com/linux/debian"
    assert fields["Suites"] == host.system_info.codename == "trixie"
    assert fields["Components"] == "test"


def test_repository_is_limited_to_the_hosts_architecture(host):
    arch = host.check_output("dpkg --print-architecture")
    assert _sources(host)["Architectures"] == arch


def test_packages_are_verified_with_the_stored_key(host):
    fields = _sources(host)
    key = host.file(fields["Signed-By"])
    assert fields["Signed-By"] == "/etc/apt/keyrings/docker.asc"
    assert key.user == "root" and key.mode == 0o644
    assert key.content_string.startswith("-----BEGIN PGP PUBLIC KEY BLOCK-----")


def test_the_module_dependency_is_installed_and_nothing_else(host):
    assert host.package("python3-debian").is_installed
    assert not host.package("docker-ce").is_installed

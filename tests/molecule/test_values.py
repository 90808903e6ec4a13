"""Issue 18: inventory values reach the containers byte for byte.

The app and mariadb roles' real templates are rendered with Ansible's own templating for
arbitrary printable values, then read back by this machine's `docker compose config`
(no daemon needed): each container's environment must hold exactly the setting, and each
secret file exactly the secret. The hosts' Compose versions are checked by the
migrate_sqlite and mariadb_native scenarios, inside the running containers.

The examples are derandomised (as tests/app's "ci" profile): every run tries the same
ones. HYPOTHESIS_PROFILE=explore searches at random with more.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
import yaml
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[2]
DOCKER = shutil.which("docker")
# Whatever Compose or a shell would read specially, and spaces at both ends.
TRICKY = [
    "$HOME",
    "${X:-y}",
    "$$",
    "$",
    "${HOME}",
    "'",
    '"',
    "\\",
    "\\n",
    "#",
    " # not a comment",
    "=",
    "@/%:",
    " ",
    "%2F",
    "{{ x }}",
    "!unsafe",
    "é ß 漢 🎉",
    "\u00a0",
    "\ufeff",
    "\u200d",
]
# Every printable character: no control characters (Cc), no surrogates, and no line or
# paragraph separators; the roles refuse those in preflight.
CHARACTERS = st.characters(codec="utf-8", exclude_categories=("Cc", "Cs", "Zl", "Zp"))
VALUE = st.lists(
    st.one_of(st.sampled_from(TRICKY), st.text(CHARACTERS, max_size=12)), max_size=6
).map("".join)
SECRET = st.tuples(st.text("abcdefgh", min_size=32, max_size=32), VALUE).map("".join)
NAMES = st.from_regex(r"\A[A-Z_][A-Z0-9_]{0,15}\Z")
SETTINGS = st.dictionaries(NAMES, VALUE, min_size=6, max_size=12)

# Each example costs one `docker compose config` (about 0.3 s); an app example carries up
# to fourteen values. VALUE_EXAMPLES (default 40) scales the counts.
SCALE = float(os.environ.get("VALUE_EXAMPLES", "40")) / 40


def examples(count: int) -> settings:
    return settings(PROPERTY, max_examples=max(1, round(count * SCALE)))


PROPERTY = settings(
    derandomize=os.environ.get("HYPOTHESIS_PROFILE", "ci") != "explore",
    database=None,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)

LOADER = DataLoader()

pytestmark = pytest.mark.skipif(DOCKER is None, reason="needs the docker CLI with Compose v2")


@cache
def _yaml(path: Path) -> dict:
    """A vars file as a role's play loads it: its strings may be templates."""
    return LOADER.load_from_file(str(path), trusted_as_template=True) or {}


@cache
def _role_vars(role: str) -> dict:
    return {
        **_yaml(ROOT / "roles" / role / "defaults" / "main.yml"),
        **_yaml(ROOT / "roles" / role / "vars" / "main.yml"),
        "ansible_managed": "Ansible managed",
        "inventory_hostname": "host1",
        "ansible_facts": {"architecture": "x86_64"},
    }


def _templar(role: str, inventory: dict) -> Templar:
    # Inventory values reach the role as data (vault, !unsafe, extra vars from JSON): not
    # templates. Jinja in an inventory string is Ansible's business, not the role's.
    return Templar(loader=LOADER, variables={**_role_vars(role), **inventory})


def render(role: str, template: str, inventory: dict) -> str:
    """The template module's way: the file is a template, trim_blocks on."""
    source = (ROOT / "roles" / role / "templates" / template).read_text()
    return _templar(role, inventory).template(
        trust_as_template(source), escape_backslashes=False, overrides={"trim_blocks": True}
    )


def expression(role: str, inventory: dict, expr: str):
    return _templar(role, inventory).template(trust_as_template(expr))


def compose_config(project: Path) -> dict:
    """What Compose makes of the project, with variables set that a slip would expand."""
    env = {"PATH": os.environ["PATH"], "HOME": "/root", "X": "x-was-expanded"}
    done = subprocess.run(
        [DOCKER, "compose", "--project-directory", str(project), "config", "--format", "json"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def container_environment(config: dict, service: str) -> dict[str, str]:
    """The service's environment as the container gets it. `config` prints a canonical
    compose file, in which every literal '$' of the model is written '$$' again."""
    return {
        name: value.replace("$$", "$")
        for name, value in config["services"][service]["environment"].items()
    }


def secret_files(config: dict, service: str) -> dict[str, bytes]:
    """Each secret the service mounts, by its path in the container: the file's bytes."""
    files = {}
    for mounted in config["services"][service].get("secrets", []):
        target = mounted.get("target") or mounted["source"]
        path = target if target.startswith("/") else f"/run/secrets/{target}"
        files[path] = Path(config["secrets"][mounted["source"]]["file"]).read_bytes()
    return files


def write_secrets(directory: Path, secrets: dict[str, str]) -> None:
    """As ansible.builtin.copy with content: writes them (the text as is, UTF-8)."""
    directory.mkdir(exist_ok=True)
    for name, value in secrets.items():
        (directory / name).write_bytes(value.encode())


def test_the_controllers_compose_is_v2():
    done = subprocess.run(
        [DOCKER, "compose", "version", "--short"], capture_output=True, text=True, check=True
    )
    assert int(done.stdout.strip().lstrip("v").split(".")[0]) >= 2, done.stdout


@examples(40)
@given(key=SECRET, password=VALUE, options=SETTINGS)
def test_the_app_gets_every_value_unchanged(tmp_path_factory, key, password, options):
    project = tmp_path_factory.mktemp("app")
    url = f"mysql+pymysql://noticeboard:{password}@db:3306/noticeboard"
    inventory = {
        "noticeboard_secret_key": key,
        "noticeboard_database_url": url,
        "noticeboard_settings": options,
    }
    (project / "compose.yml").write_text(render("app", "compose.yml.j2", inventory))
    write_secrets(project / "secrets", expression("app", inventory, "{{ _noticeboard_secrets }}"))
    config = compose_config(project)

    environment = container_environment(config, "app")
    for name, value in options.items():
        assert environment[name] == value, name
    files = secret_files(config, "app")
    assert files[environment["SECRET_KEY_FILE"]] == key.encode()
    assert files[environment["DATABASE_URL_FILE"]] == url.encode()
    assert "SECRET_KEY" not in environment and "DATABASE_URL" not in environment
    assert key not in json.dumps(config, ensure_ascii=False)

    # app.env: for `docker run --env-file`, which takes all after the first '=' as is.
    lines = render("app", "app.env.j2", inventory).splitlines()
    assert all(key not in line and url not in line for line in lines)
    for name, value in options.items():
        assert f"{name}={value}" in lines, name


@examples(20)
@given(password=VALUE)
def test_mariadb_gets_the_root_password_unchanged(tmp_path_factory, password):
    project = tmp_path_factory.mktemp("mariadb")
    root = "r" * 16 + password
    inventory = {
        "noticeboard_mariadb_root_password": root,
        "noticeboard_mariadb_password": "a" * 16,
    }
    (project / "compose.yml").write_text(render("mariadb", "compose.yml.j2", inventory))
    (project / "mariadb.env").write_text(render("mariadb", "mariadb.env.j2", inventory))
    write_secrets(project / "secrets", {"mariadb_root_password": root})
    config = compose_config(project)

    environment = container_environment(config, "mariadb")
    assert "MARIADB_ROOT_PASSWORD" not in environment
    files = secret_files(config, "mariadb")
    assert files[environment["MARIADB_ROOT_PASSWORD_FILE"]] == root.encode()
    # The file the role's copy task writes: its content, templated as the task does.
    assert expression("mariadb", inventory, "{{ noticeboard_mariadb_root_password }}") == root


@examples(100)
@given(password=VALUE)
def test_the_cluster_inventorys_url_carries_any_password(password):
    shipped = yaml.safe_load(
        (ROOT / "inventories" / "cluster" / "group_vars" / "all" / "main.yml").read_text()
    )
    inventory = {
        "noticeboard_mariadb_user": "noticeboard",
        "noticeboard_mariadb_password": password,
        "cluster_db_address": "192.0.2.10",
        "noticeboard_mariadb_port": 3306,
        "noticeboard_mariadb_database": "noticeboard",
    }
    url = expression("app", inventory, shipped["noticeboard_database_url"])
    parts = urlsplit(url)
    assert (parts.hostname, parts.port, parts.path) == ("192.0.2.10", 3306, "/noticeboard")
    assert unquote(parts.password) == password


@examples(100)
@given(password=VALUE, root=VALUE)
def test_the_accounts_sql_quotes_any_password(password, root):
    inventory = {
        "noticeboard_mariadb_password": "a" * 16 + password,
        "noticeboard_mariadb_root_password": "r" * 16 + root,
        "noticeboard_mariadb_install": "native",
        "__noticeboard_mariadb_hosts": {"stdout_lines": []},
        "_noticeboard_mariadb_clients": ["192.0.2.11"],
    }
    sql = render("mariadb", "accounts.sql.j2", inventory)
    literals = re.findall(r"PASSWORD\('((?:[^'\\]|\\.)*)'\);$", sql, re.MULTILINE)
    # MariaDB (default sql_mode) reads \\ as a backslash and \' as a quote; any other
    # escape would change the password, and an unescaped quote would end the string.
    for literal in literals:
        assert set(re.findall(r"\\.", literal)) <= {"\\\\", "\\'"}, literal
    decoded = [re.sub(r"\\(.)", r"\1", literal) for literal in literals]
    expected = [inventory["noticeboard_mariadb_password"]] * 2
    assert decoded == [*expected, inventory["noticeboard_mariadb_root_password"]]

"""The bench's proxy_tls group renders roles/loadbalancer's own haproxy.cfg template.

Nothing else runs that rendering before a bench session, so a template change that the
bench's Jinja environment cannot render (a filter only Ansible has, a new variable) is
caught here, in the suite, instead of in the next `nox -s bench`.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _bench_run():
    spec = importlib.util.spec_from_file_location("bench_run", ROOT / "bench" / "run.py")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(ROOT / "bench"))
    return module


def test_the_bench_renders_the_load_balancers_template_with_one_server():
    config = _bench_run().haproxy_config("192.0.2.7", 18000)

    servers = re.findall(r"^\s*server\s+(\S+)\s+(\S+)", config, re.MULTILINE)
    assert servers == [("app1", "192.0.2.7:18000")], config
    assert re.search(r"^\s*bind\s.*\bssl\b", config, re.MULTILINE), config
    assert config.endswith("\n")


def test_the_bench_renders_the_maintenance_page_the_configuration_names():
    bench = _bench_run()
    config = bench.haproxy_config("192.0.2.7", 18000)
    assert "/maintenance.html" in config
    page = bench.lb_template("maintenance.html.j2", "192.0.2.7", 18000)
    assert "<html" in page.lower()

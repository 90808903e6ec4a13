"""The offline stand-ins keep the parts of the official images' contracts that users rely on.

The compose tests run the stand-ins the way the compose files do; this module covers
what those leave out: secrets given as files.
"""

from __future__ import annotations

import secrets

from imagetools import docker_cli, sh, wait_healthy


def test_postgres_password_from_a_file_is_required_at_login(containers, postgres_image, tmp_path):
    password = secrets.token_urlsafe(18)
    secret = tmp_path / "password"
    secret.write_text(password + "\n")
    secret.chmod(0o644)
    db = containers.run(
        postgres_image,
        environment={"POSTGRES_PASSWORD_FILE": "/run/secrets/pw", "POSTGRES_USER": "board"},
        volumes={str(secret): {"bind": "/run/secrets/pw", "mode": "ro"}},
        healthcheck={
            "test": ["CMD", "pg_isready", "-h", "127.0.0.1", "-U", "board"],
            "interval": 1_000_000_000,
            "retries": 60,
        },
    )
    wait_healthy(db, timeout=120)

    def login(with_password: str):
        # Over the container's own address: loopback is trusted, as upstream.
        query = 'psql -h "$(hostname -i)" -U board -d board -tAc "select current_user"'
        return sh(
            docker_cli(),
            "exec",
            "-e",
            f"PGPASSWORD={with_password}",
            db.id,
            "sh",
            "-c",
            query,
            check=False,
        )

    # As upstream, the file's trailing newline is not part of the password.
    assert login(password).stdout.strip() == "board"
    refused = login("not-" + password)
    assert refused.returncode != 0
    assert "password authentication failed" in refused.stderr

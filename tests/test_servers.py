"""The test servers of tests/servers.py: real PostgreSQL and redis-server, or a clear error."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.servers
def test_each_test_gets_an_empty_postgres_database_and_redis_db(
    postgres_url: str, redis_url: str
) -> None:
    import redis

    assert postgres_url.startswith("postgresql+psycopg://postgres@127.0.0.1:")
    engine = sa.create_engine(postgres_url)
    try:
        assert sa.inspect(engine).get_table_names() == []
        with engine.begin() as conn:
            conn.execute(sa.text("create table t (x int)"))
            conn.execute(sa.text("insert into t values (1)"))
        with engine.connect() as conn:
            assert conn.execute(sa.text("select x from t")).scalar() == 1
    finally:
        engine.dispose()
    client = redis.Redis.from_url(redis_url)
    try:
        assert client.dbsize() == 0
        client.set("k", "v")
        assert client.get("k") == b"v"
    finally:
        client.close()


def test_missing_server_binaries_are_errors_with_the_install_command(tmp_path: Path) -> None:
    # A session without the Debian packages: both fixtures must error (never skip) in one line.
    (tmp_path / "conftest.py").write_text(
        "pytest_plugins = ['tests.servers']\n"
        "def pytest_configure(config):\n"
        "    import tests.servers as servers\n"
        "    servers.postgres_bin_dir = lambda: None\n"
        "    servers.redis_binary = lambda: None\n"
    )
    (tmp_path / "test_uses_servers.py").write_text(
        "def test_pg(postgres_url):\n    pass\n\n"
        "def test_redis(redis_url):\n    pass\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir",
         str(tmp_path), str(tmp_path)],
        cwd=tmp_path, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "2 errors" in result.stdout and "skipped" not in result.stdout
    assert "warning" not in result.stdout
    hint = "install it with `apt-get install postgresql redis-server`"
    assert f"PostgreSQL (/usr/lib/postgresql/*/bin/initdb) not found; {hint}" in result.stdout
    assert f"redis-server not found; {hint}" in result.stdout

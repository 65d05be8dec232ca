"""examples/deploy: the compose files parse, every command they (and their usage comments) run
is one the CLI accepts with those options and values, every environment variable they set is
one voicereplay reads (and the values pass its checks), and the web app and every worker mount
the one artifacts volume at ``$VOICEREPLAY_HOME/artifacts``. Docker is not run here (no image
registry); the Dockerfile is checked against the repository it copies from."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml

from voicereplay.cli import app
from voicereplay.config import Settings

REPO = Path(__file__).resolve().parent.parent
DEPLOY = REPO / "examples" / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
NFS = DEPLOY / "compose.nfs.yaml"
DOCKERFILE = DEPLOY / "Dockerfile"
# What the user exports before `docker compose up` (the variables compose insists on).
REQUIRED = {"POSTGRES_PASSWORD": "pw-example", "VOICEREPLAY_API_TOKEN": "token-example"}
_VARIABLE = re.compile(r"\$\{(\w+)(?:(:[-?])([^}]*))?\}")


def interpolate(text: str, values: dict[str, str]) -> str:
    """Compose's ``${NAME}``, ``${NAME:-default}`` and ``${NAME:?error}``."""
    def one(match: re.Match[str]) -> str:
        name, how, rest = match.groups()
        if values.get(name):
            return values[name]
        if how == ":?":
            raise KeyError(f"{name}: {rest}")
        return rest if how == ":-" else ""

    return _VARIABLE.sub(one, text)


def compose(path: Path = COMPOSE, values: dict[str, str] | None = None) -> dict[str, Any]:
    loaded = yaml.safe_load(interpolate(path.read_text(encoding="utf-8"),
                                        REQUIRED if values is None else values))
    assert isinstance(loaded, dict)
    return loaded


def voicereplay_services(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: s for name, s in spec["services"].items()
            if s.get("image") == "voicereplay:local"}


def parse_command(words: list[str]) -> Any:
    """Parse ``voicereplay …`` as the CLI would, without running it (the click context, whose
    ``params`` are the parsed options): an unknown command or option, or a bad value, raises
    a usage error."""
    assert words[0] == "voicereplay", words
    command: Any = typer.main.get_command(app)
    args = words[1:]
    while hasattr(command, "commands"):  # a group: the next word names its command
        name, args = args[0], args[1:]
        assert name in command.commands, f"no command {name!r} in {words}"
        command = command.commands[name]
    return command.make_context(command.name, list(args))


class ReadEnv(dict[str, str]):
    """An environment that remembers which variables were looked up."""

    def __init__(self, values: dict[str, str]) -> None:
        super().__init__(values)
        self.read: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        self.read.add(key)
        return super().get(key, default)

    def __getitem__(self, key: str) -> str:
        self.read.add(key)
        return super().__getitem__(key)


def test_the_services_are_postgres_one_web_app_and_workers() -> None:
    spec = compose()
    assert set(spec["services"]) == {"postgres", "serve", "worker"}
    ours = voicereplay_services(spec)
    assert set(ours) == {"serve", "worker"}
    build = ours["worker"]["build"]
    assert (DEPLOY / build["context"]).resolve() == REPO
    assert (REPO / build["dockerfile"]).resolve() == DOCKERFILE
    serve = parse_command(ours["serve"]["command"])
    assert serve.params["no_worker"] is True  # the workers run the jobs
    assert serve.params["host"] == "0.0.0.0"
    assert ours["serve"]["ports"][0].endswith(f":{serve.params['port']}")
    worker = parse_command(ours["worker"]["command"])
    assert worker.params["concurrency"] >= 1
    assert ours["worker"]["deploy"]["replicas"] >= 2
    for service in ours.values():
        assert service["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_every_command_in_the_usage_comments_parses() -> None:
    commands = [line.split("docker compose run --rm serve ", 1)[1]
                for line in COMPOSE.read_text(encoding="utf-8").splitlines()
                if line.startswith("#") and "docker compose run --rm serve voicereplay" in line]
    assert len(commands) >= 2
    for command in commands:
        parse_command(shlex.split(command))
    batch = parse_command(shlex.split(commands[-1]))
    assert batch.params["background"] and batch.params["all_calls"]


def test_every_variable_is_read_by_voicereplay_and_points_at_the_shared_store() -> None:
    spec = compose()
    pg = spec["services"]["postgres"]["environment"]
    mounts = set()
    for name, service in voicereplay_services(spec).items():
        environment = {k: str(v) for k, v in service["environment"].items()}
        env = ReadEnv(environment)
        settings = Settings.from_env(env)  # a bad value would be a ConfigError here
        unread = {k for k in environment if k not in env.read and not k.endswith("_API_KEY")}
        assert not unread, f"{name}: voicereplay never reads {sorted(unread)}"
        assert settings.database_url == (f"postgresql+psycopg://{pg['POSTGRES_USER']}:"
                                         f"{pg['POSTGRES_PASSWORD']}@postgres:5432/"
                                         f"{pg['POSTGRES_DB']}")
        assert settings.api_token == REQUIRED["VOICEREPLAY_API_TOKEN"]
        # The artifacts volume is mounted where voicereplay looks for artifacts.
        volume = next(v.split(":") for v in service["volumes"]
                      if v.split(":")[1] == str(settings.artifacts_dir))
        mounts.add(volume[0])
    assert mounts == {"artifacts"} and "artifacts" in spec["volumes"]


def test_compose_refuses_to_start_without_the_password_and_token() -> None:
    for missing in REQUIRED:
        with pytest.raises(KeyError, match=missing):
            compose(values={k: v for k, v in REQUIRED.items() if k != missing})


def test_workers_on_another_machine_reach_the_first_ones_database() -> None:
    spec = compose(values={**REQUIRED, "VOICEREPLAY_DB_HOST": "db.internal"})
    env = spec["services"]["worker"]["environment"]
    assert "@db.internal:5432/" in Settings.from_env(env).database_url
    nfs = compose(NFS, {"ARTIFACTS_NFS_SERVER": "nfs.internal"})
    opts = nfs["volumes"]["artifacts"]["driver_opts"]
    assert opts["type"] == "nfs" and "addr=nfs.internal" in opts["o"]
    assert opts["device"].startswith(":/")


def test_the_dockerfile_copies_what_the_package_needs_and_installs_real_extras() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    copied = [line.split()[1:-1] for line in text.splitlines() if line.startswith("COPY ")]
    sources = [source for line in copied for source in line]
    for source in sources:
        assert (REPO / source).exists(), source
    # voicereplay/providers, web and demo are symlinks: their targets must be in the image.
    for link in (p for p in (REPO / "voicereplay").iterdir() if p.is_symlink()):
        target = (link.parent / link.readlink()).resolve().relative_to(REPO)
        assert str(target) in sources, f"{link.name} -> {target} is not copied"
    import tomllib

    extras = set(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
                 ["optional-dependencies"])
    [wanted] = re.findall(r"pip install '\.\[([\w,]+)\]'", text)
    assert set(wanted.split(",")) <= extras and {"models", "postgres"} <= set(wanted.split(","))
    home = re.search(r"^ENV VOICEREPLAY_HOME=(\S+)$", text, re.M)
    assert home is not None
    for service in voicereplay_services(compose()).values():
        assert service["environment"]["VOICEREPLAY_HOME"] == home.group(1)
    assert f"mkdir -p {home.group(1)}/artifacts" in text  # the volume starts out ours

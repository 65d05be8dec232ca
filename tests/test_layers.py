"""Imports only point down (DESIGN.md, "Who may import whom"): checked on the source."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "voicereplay"


def imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return found


def offenders(folder: str, forbidden: tuple[str, ...], allowed: tuple[str, ...] = ()) -> dict:
    files = [PACKAGE / folder] if folder.endswith(".py") else sorted(
        (PACKAGE / folder).rglob("*.py"))
    return {str(f.relative_to(PACKAGE)): sorted(m for m in imports(f)
                                                if m.startswith(forbidden))
            for f in files if f.name not in allowed
            and any(m.startswith(forbidden) for m in imports(f))}


def test_compare_imports_nothing_from_simulate() -> None:
    # judges are built by the pipeline (voicereplay.pipeline.judging) and passed in
    assert offenders("compare", ("voicereplay.simulate",)) == {}


def test_the_core_audio_and_turns_modules_import_no_higher_floor() -> None:
    higher = ("voicereplay.compare", "voicereplay.simulate", "voicereplay.pipeline",
              "voicereplay.providers", "voicereplay.store", "voicereplay.cli", "voicereplay.web")
    assert offenders("audio.py", higher) == {}
    assert offenders("turns.py", higher) == {}


FACES = ("voicereplay.cli", "voicereplay.web", "voicereplay.jobs")
PIPELINE = ("voicereplay.pipeline",)
ENGINES = ("voicereplay.simulate", "voicereplay.providers", "voicereplay.store")
ANALYSIS = ("voicereplay.compare",)
CORE_MODULES = ("artifacts.py", "audio.py", "checks.py", "config.py", "errors.py", "knowledge.py",
                "models.py", "recording_check.py", "registry.py", "render.py", "retry.py",
                "scenario.py", "snapshot.py", "turns.py", "signatures.py", "yaml_files.py")


def test_every_floor_imports_only_downwards() -> None:
    for module in CORE_MODULES:
        assert offenders(module, FACES + PIPELINE + ENGINES + ANALYSIS) == {}, module
    assert offenders("compare", FACES + PIPELINE + ENGINES) == {}
    for engine in ("simulate", "store"):
        assert offenders(engine, FACES + PIPELINE) == {}, engine
    assert offenders("providers", FACES + PIPELINE + ("voicereplay.simulate",)) == {}
    assert offenders("simulate", ("voicereplay.providers",)) == {}
    assert offenders("pipeline", FACES) == {}


def test_replay_modes_use_only_the_public_session_api() -> None:
    for path in sorted((PACKAGE / "simulate" / "modes").glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        private = [f"{ast.unparse(n.value)}.{n.attr}" for n in ast.walk(tree)
                   if isinstance(n, ast.Attribute) and n.attr.startswith("_")
                   and not n.attr.startswith("__")
                   and not (isinstance(n.value, ast.Name) and n.value.id in ("self", "cls"))]
        assert private == [], f"{path.name} reaches into private members: {private}"
        assert "voicereplay.simulate.replay" not in imports(path)  # no cycle with the engine

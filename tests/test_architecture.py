"""The rules of the layout.

- The user's top-level folders install as one namespace, ``astroflow.*``: the wheel's top level
  holds ``astroflow`` alone, and code imports ``astroflow.<room>``, never a bare ``models``.
- Imports flow one way: models <- processing, storage <- tasks <- flows.
- Environment variables are read (or set) in ``models/settings.py`` only.
- Only the CLI prints; the CLI never calls a task's ``.fn`` to bypass a flow.
"""

from __future__ import annotations

import ast
import zipfile
from pathlib import Path

import pytest

from tests.conftest import build_wheel

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("models", "processing", "storage", "tasks", "flows")
# What each package may import from the project.
ALLOWED = {
    "models": {"models"},
    "processing": {"models", "processing"},
    "storage": {"models", "storage"},
    "tasks": {"models", "processing", "storage", "tasks"},
    "flows": {"models", "processing", "storage", "tasks", "flows"},
}
# Third-party modules a package must not touch.
FORBIDDEN = {
    "models": {"prefect", "fsspec", "adlfs", "httpx", "urllib3"},
    "processing": {"prefect", "fsspec", "adlfs", "sqlmodel", "sqlalchemy", "httpx", "urllib3"},
    "storage": {"prefect"},
    "tasks": set(),
    "flows": set(),
}
SETTINGS = ROOT / "models" / "settings.py"


def _modules(path: Path) -> set[str]:
    """Dotted names of every absolute import in a file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def _files(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def _all_files() -> list[Path]:
    return [p for pkg in (*PACKAGES, "tests", "benchmarks") for p in _files(pkg)]


@pytest.mark.parametrize("package", PACKAGES)
def test_imports_flow_one_way(package: str) -> None:
    bad: list[str] = []
    for path in _files(package):
        for name in _modules(path):
            parts = name.split(".")
            if parts[0] == "astroflow" and len(parts) > 1 and parts[1] not in ALLOWED[package]:
                bad.append(f"{path.relative_to(ROOT)} imports {name}")
            if parts[0] in FORBIDDEN[package]:
                bad.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not bad, "\n".join(bad)


def test_code_imports_the_namespace_never_bare_folders() -> None:
    bad = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in _all_files()
        for name in _modules(path)
        if name.split(".")[0] in PACKAGES
    ]
    assert not bad, "\n".join(bad)


def _reads_environment(node: ast.AST) -> bool:
    if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv", "putenv", "environb"):
        return isinstance(node.value, ast.Name) and node.value.id == "os"
    if isinstance(node, ast.ImportFrom) and node.module == "os":
        return any(a.name in ("environ", "getenv", "putenv") for a in node.names)
    return False


@pytest.mark.parametrize("package", PACKAGES)
def test_environment_is_read_in_settings_only(package: str) -> None:
    offenders = []
    for path in _files(package):
        if path == SETTINGS:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        offenders += [
            f"{path.relative_to(ROOT)}:{node.lineno}"
            for node in ast.walk(tree)
            if _reads_environment(node)
        ]
    assert not offenders, offenders


def test_settings_module_does_read_the_environment() -> None:
    # the check above would pass for nothing if it could not see a read
    tree = ast.parse(SETTINGS.read_text(encoding="utf-8"))
    assert any(_reads_environment(node) for node in ast.walk(tree))


@pytest.mark.parametrize("package", PACKAGES)
def test_no_print_outside_the_cli(package: str) -> None:
    offenders = []
    for path in _files(package):
        if "cli" in path.relative_to(ROOT).parts:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "print"
            ):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not offenders, offenders


def test_nothing_calls_a_task_body_around_its_flow() -> None:
    offenders = []
    for path in _files("flows") + _files("tasks"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        offenders += [
            f"{path.relative_to(ROOT)}:{node.lineno}"
            for node in ast.walk(tree)
            if isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "fn"
        ]
    assert not offenders, offenders


def test_task_bodies_live_in_prefect_free_modules() -> None:
    """The convention (README, Architecture): ``tasks/<area>.py`` declares Prefect tasks whose
    bodies are one call into ``tasks/<area>_work.py``, which imports no Prefect."""
    for path in _files("tasks"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        uses_prefect = any(n.split(".")[0] == "prefect" for n in _modules(path))
        if path.stem.endswith("_work"):
            assert not uses_prefect, f"{path.name} imports Prefect"
            continue
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and any(
                isinstance(d, ast.Call) and getattr(d.func, "id", "") == "task"
                for d in node.decorator_list
            ):
                body = [s for s in node.body if not isinstance(s, ast.Expr)]  # docstring
                where = f"{path.name}:{node.lineno} task {node.name}"
                assert len(body) == 1, f"{where} does more than call its body"
                assert isinstance(body[0], ast.Return), f"{where} does more than call its body"


def _package_folders() -> set[str]:
    names = set()
    for package in (*PACKAGES, "deployments"):
        for init in (ROOT / package).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT)
            names.add("astroflow." + ".".join(rel.parts))
    return names


@pytest.mark.slow
def test_wheel_holds_the_astroflow_namespace_alone(tmp_path: Path) -> None:
    """Build the wheel from the project's files and look inside it."""
    wheel = build_wheel(tmp_path)
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
    top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert top == {"astroflow"}
    packages = {".".join(n.split("/")[:-1]) for n in names if n.endswith("/__init__.py")}
    assert packages == _package_folders()  # every package folder is in the wheel
    for data in (
        "astroflow/models/rulesets/generic-ccd.yaml",
        "astroflow/models/settings/qc-default.yaml",
        "astroflow/storage/migrations/script.py.mako",
        "astroflow/storage/migrations/versions/0002_remote_accepted_hash.py",
        "astroflow/deployments/prefect.yaml",  # astroflow serve from any install
    ):
        assert data in names


# Rooms inside storage/ and tasks/ that must not lean on each other: the organiser's code and
# ingest's code meet only in the modules that bridge them (the ``workspace`` image source) and
# in flows/.
ROOMS = {
    "organiser": [ROOT / "storage" / "organiser", ROOT / "tasks" / "organiser_work.py"],
    "ingest": [ROOT / "storage" / "ingest", ROOT / "tasks" / "ingest_work.py"],
}
ROOM_MODULES = {
    "organiser": ("astroflow.storage.organiser", "astroflow.tasks.organiser_work"),
    "ingest": ("astroflow.storage.ingest", "astroflow.tasks.ingest_work"),
}


def _room_files(room: str) -> list[Path]:
    return [
        p for entry in ROOMS[room] for p in ([entry] if entry.is_file() else entry.rglob("*.py"))
    ]


@pytest.mark.parametrize(("room", "other"), [("organiser", "ingest"), ("ingest", "organiser")])
def test_organiser_and_ingest_do_not_import_each_other(room: str, other: str) -> None:
    bad = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in _room_files(room)
        for name in _modules(path)
        if name.startswith(ROOM_MODULES[other])
    ]
    assert _room_files(room), room  # the check sees files
    assert not bad, "\n".join(bad)


# Calls that write files or rows; a flow asks a task to make them.
WRITERS = {
    "write_bytes",
    "write_text",
    "write_bytes_atomic",
    "write_json_atomic",
    "atomic_write",
    "save_rejects",
    "decide",
    "forget_decision",
    "enable_review",
    "move",
    "commit",
    "clean_partials",
    "mkdir",
    "unlink",
    "rmtree",
    "write_sofs",
    "replace_sofs",
    "replace_plan",
    "set_status",
    "add_qc",
    "clear_inventory",
    "ensure_session_dirs",
    "put_tree",
}


def test_flows_do_not_write_files_or_rows() -> None:
    """Flow modules orchestrate: every write happens in a task (or, for the command line's
    own settings and sessions, behind a storage call the CLI makes through ``run_stage``)."""
    offenders = []
    for path in _files("flows"):
        if "cli" in path.relative_to(ROOT).parts or path.name == "server.py":
            continue  # the CLI and the local server's own state files
        tree = ast.parse(path.read_text(encoding="utf-8"))
        offenders += [
            f"{path.relative_to(ROOT)}:{node.lineno} calls {node.func.attr}"
            for node in ast.walk(tree)
            if isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in WRITERS
        ]
    assert not offenders, "\n".join(offenders)


def test_no_hand_kept_list_of_plugins() -> None:
    """Sources, repository backends and recipes are found through entry points: the code
    names no list of source types, URL schemes or built-in recipes."""
    lists = {
        "source types": {"astropix", "djangoplicity", "folder", "workspace"},
        "repository schemes": {"file", "memory", "az", "abfs"},
        "recipes": {"mbias", "mdark", "mflat", "reduce"},
    }
    bad = []
    for path in [p for pkg in PACKAGES for p in _files(pkg)]:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Set | ast.List | ast.Tuple | ast.Dict):
                elts = node.keys if isinstance(node, ast.Dict) else node.elts
                names = {e.value for e in elts if isinstance(e, ast.Constant)}
                for what, known in lists.items():
                    if len(names & known) >= 3:
                        bad.append(f"{path.relative_to(ROOT)}:{node.lineno} lists {what}")
    assert not bad, "\n".join(bad)

"""Deployments end to end: a real Prefect server, `prefect deploy` from deployments/prefect.yaml,
a process worker, and `prefect deployment run` of the ingest and calibration deployments."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import yaml
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from astroflow.flows.serve import build_deployments, deployment_specs
from astroflow.processing.synthetic import night_frames
from astroflow.storage.organiser.frames import write_raw_frame
from tests.conftest import ROOT, Azurite, build_wheel, free_port
from tests.imagedata import tan_wcs, write_fits
from tests.organiser_data import make_workspace

PREFECT = str(Path(sys.executable).with_name("prefect"))


def test_prefect_yaml_declares_the_deployments() -> None:
    specs = {s["name"]: s for s in deployment_specs()}
    assert {"nightly-ingest", "reindex", "prepare", "calibrate-night", "night"} <= set(specs)
    assert specs["nightly-ingest"]["schedules"][0]["cron"] == "0 8 * * *"
    # nothing runs on a schedule until an operator has configured real paths
    assert all(not s["active"] for spec in specs.values() for s in spec.get("schedules", []))
    # module entrypoints: they resolve wherever astroflow is installed
    assert all(spec["entrypoint"].startswith("astroflow.flows.") for spec in specs.values())
    assert "schedules" not in specs["reindex"]
    text = (ROOT / "deployments" / "prefect.yaml").read_text()
    assert "AccountKey" not in text
    assert "connection_string" not in text.lower()
    served = build_deployments()
    names = {(d.flow_name, d.name) for d in served}
    # serve never takes over (and, on exit, pauses) the work pool's deployments
    assert ("ingest-images", "nightly-ingest-served") in names
    assert ("calibration-cascade", "calibrate-night-served") in names
    assert not names & {(d.flow_name, s) for d in served for s in specs}
    assert all(not s.active for d in served for s in d.schedules)


def _env(home: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        PREFECT_HOME=str(home),
        PREFECT_API_URL=f"http://127.0.0.1:{port}/api",
        PREFECT_UI_API_URL=f"http://127.0.0.1:{port}/api",  # the UI asks its own server
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_WORKER_QUERY_SECONDS="2",
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="120",
        COLUMNS="250",  # rich tables are cut to the terminal width
    )
    env.pop("ASTROFLOW_DATABASE_URL", None)
    return env


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()  # the worker ignores its first signal
            proc.wait(10)


@pytest.fixture(scope="module")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    home = tmp_path_factory.mktemp("prefect-home")
    port = free_port()
    env = _env(home, port)
    log = open(home / "server.log", "w")  # noqa: SIM115 - closed below
    server = subprocess.Popen(
        [PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=home,
    )
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError((home / "server.log").read_text()[-3000:])
            time.sleep(0.5)
        yield env
    finally:
        _stop(server)
        log.close()


def _run(args: list[str], env: dict[str, str], timeout: float = 300) -> str:
    out = subprocess.run(args, env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise AssertionError(
            f"{' '.join(args)} failed ({out.returncode}):\n{out.stdout[-4000:]}"
            f"\n{out.stderr[-4000:]}"
        )
    return out.stdout + out.stderr


def _run_deployment(name: str, params: dict[str, str], env: dict[str, str]) -> None:
    args = [PREFECT, "deployment", "run", name, "--watch", "--watch-timeout", "400"]
    for key, value in params.items():
        args += ["-p", f"{key}={value}"]
    out = subprocess.run(args, env=env, cwd=ROOT, capture_output=True, text=True, timeout=450)
    text = out.stdout + out.stderr
    if out.returncode != 0 or "Completed" not in text:
        run_id = re.search(r"UUID:\s*([0-9a-f-]{36})", text)
        logs = ""
        if run_id:
            logs = subprocess.run(
                [PREFECT, "flow-run", "logs", run_id.group(1)],
                env=env,
                capture_output=True,
                text=True,
            ).stdout[-6000:]
        pytest.fail(f"deployment run {name} did not complete:\n{text[-3000:]}\nlogs:\n{logs}")


def _wheel_env(env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """``env`` for a process that runs astroflow from its wheel, installed in a folder of its
    own (``PYTHONPATH``); checked to import from there, started outside the checkout."""
    site = tmp_path / "site"
    wheel = build_wheel(tmp_path / "build")
    pip = [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site)]
    _run([*pip, str(wheel)], env)
    wheel_env = {**env, "PYTHONPATH": str(site)}
    where = subprocess.run(
        [sys.executable, "-c", "import astroflow.flows.ingest as m; print(m.__file__)"],
        env=wheel_env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert where.startswith(str(site)), where
    return wheel_env


def _start_deployment(name: str, params: dict[str, str], env: dict[str, str]) -> str:
    """``prefect deployment run`` without watching: the new flow run's id."""
    args = [PREFECT, "deployment", "run", name]
    for key, value in params.items():
        args += ["-p", f"{key}={value}"]
    text = _run(args, env)
    found = re.search(r"UUID:\s*([0-9a-f-]{36})", text)
    assert found, text
    return found.group(1)


def _finished_run(api: str, run_id: str, timeout: float = 400) -> dict:
    """The flow run once it is in a final state, with ``states``: every state it went through."""
    deadline = time.monotonic() + timeout
    while True:
        run = httpx.get(f"{api}/flow_runs/{run_id}", timeout=10).json()
        if run["state"]["type"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
            break
        assert time.monotonic() < deadline, f"run {run_id} still {run['state']['name']}"
        time.sleep(1)
    states = httpx.get(f"{api}/flow_run_states/", params={"flow_run_id": run_id}, timeout=10)
    run["states"] = [st["name"] for st in states.json()]
    return run


DEPLOYMENTS = {
    "nightly-ingest": "ingest-images",
    "reindex": "reindex-repository",
    "prepare": "prepare-workspace",
    "calibrate-night": "calibration-cascade",
    "night": "process-night",
}


def _check_what_the_ui_shows(api: str) -> None:
    """The run form of every deployment: each parameter typed and described, optional ones
    plain fields, the task runner a dropdown; no recorded working directory; no schedule on."""
    for name, flow_name in DEPLOYMENTS.items():
        got = httpx.get(f"{api}/deployments/name/{flow_name}/{name}", timeout=10).json()
        props = got["parameter_openapi_schema"]["properties"]
        assert props, name
        for param, prop in props.items():
            assert prop.get("description"), f"{name}.{param} has no description"
            # the form renders descriptions as HTML: an <word> would vanish
            assert not re.search(r"<\w", prop["description"]), f"{name}.{param}"
            if param == "task_runner":
                choices = [a for a in prop["anyOf"] if "enum" in a]
                assert choices[0]["enum"] == ["threads", "dask-local"]
                assert all(a.get("title") for a in prop["anyOf"]), "unlabelled forms"
            else:
                assert prop.get("type") in ("string", "boolean", "integer", "array"), param
                assert "anyOf" not in prop, f"{name}.{param} renders as a type toggle"
        steps = [next(iter(step)) for step in got.get("pull_steps") or []]
        assert "prefect.deployments.steps.set_working_directory" not in steps, name
        assert all(not s["active"] for s in got.get("schedules", [])), name


_WEBHOOK_BLOCK = """
import sys
from prefect.blocks.webhook import Webhook
print("BLOCK", Webhook(method="POST", url=sys.argv[1]).save("astroflow-alerts", overwrite=True))
"""


def _load_shipped_automations(env: dict[str, str], hook_url: str, tmp_path: Path) -> None:
    """As deployments/automations.yaml says: a Webhook block, its id in a copy of the file,
    ``prefect automation create --from-file``."""
    made = _run([sys.executable, "-c", _WEBHOOK_BLOCK, hook_url], env)
    block_id = re.search(r"BLOCK ([0-9a-f-]{36})", made)
    assert block_id, made
    text = (ROOT / "deployments" / "automations.yaml").read_text(encoding="utf-8")
    copy = tmp_path / "automations.yaml"
    copy.write_text(text.replace("WEBHOOK_BLOCK_ID", block_id.group(1)), encoding="utf-8")
    _run([PREFECT, "automation", "create", "--from-file", str(copy)], env)


@pytest.mark.slow
def test_deploy_worker_and_run(
    prefect_server: dict[str, str], tmp_path: Path, httpserver: HTTPServer
) -> None:
    env = prefect_server
    calls: list[dict] = []

    def webhook(request: Request) -> Response:
        calls.append(json.loads(request.get_data(as_text=True)))
        return Response("ok")

    httpserver.expect_request("/alerts", method="POST").respond_with_handler(webhook)
    _load_shipped_automations(env, httpserver.url_for("/alerts"), tmp_path)
    _run([PREFECT, "work-pool", "create", "astroflow", "--type", "process"], env)
    _run(
        [PREFECT, "--no-prompt", "deploy", "--prefect-file", "deployments/prefect.yaml", "--all"],
        env,
    )
    listed = _run([PREFECT, "deployment", "ls"], env)
    for name in ("nightly-ingest", "calibrate-night", "night", "reindex", "prepare"):
        assert name in listed
    _check_what_the_ui_shows(env["PREFECT_API_URL"])
    # inputs: a folder source with one FITS image, a synthetic workspace
    src = tmp_path / "src"
    src.mkdir()
    write_fits(src / "ngc2000.fits", 300, 200, np.random.default_rng(3), tan_wcs(300, 200))
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "toasty-pipeline-config.yaml").write_text(
        yaml.safe_dump(
            {
                "source_type": "folder",
                "publish_url_prefix": "https://x.org/",
                "folder_name": "deployed",
                "folder": {"path": str(src)},
            }
        )
    )
    ws = tmp_path / "ws"
    make_workspace(ws, np.random.default_rng(4), shape=(24, 24))
    # the worker runs astroflow from a wheel, in another folder than the checkout
    worker_env = _wheel_env(env, tmp_path)
    worker_log = open(tmp_path / "worker.log", "w")  # noqa: SIM115 - closed below
    health_port = free_port()  # the image's HEALTHCHECK asks the worker's health server
    worker_env["PREFECT_WORKER_WEBSERVER_PORT"] = str(health_port)
    worker = subprocess.Popen(
        [PREFECT, "worker", "start", "--pool", "astroflow", "--with-healthcheck"],
        env=worker_env,
        cwd=tmp_path,  # not the checkout: module entrypoints resolve from the installed package
        stdout=worker_log,
        stderr=subprocess.STDOUT,
    )
    try:
        _run_deployment(
            "ingest-images/nightly-ingest",
            {"repository": str(repo), "work_dir": str(tmp_path / "work")},
            env,
        )
        assert (repo / "ngc2000" / "index.wtml").exists()
        assert "ngc2000" in (repo / "index.wtml").read_text()
        # two runs of the deployment started one second apart, with a new image: the second
        # waits for the first (concurrency limit 1, ENQUEUE); the image is published once
        write_fits(src / "ngc2001.fits", 300, 200, np.random.default_rng(5), tan_wcs(300, 200))
        params = {"repository": str(repo), "work_dir": str(tmp_path / "work")}
        ids = [_start_deployment("ingest-images/nightly-ingest", params, env)]
        time.sleep(1)
        ids.append(_start_deployment("ingest-images/nightly-ingest", params, env))
        runs = [_finished_run(env["PREFECT_API_URL"], run_id) for run_id in ids]
        assert [r["state"]["type"] for r in runs] == ["COMPLETED", "COMPLETED"], runs
        first, second = sorted(runs, key=lambda r: r["start_time"])
        assert first["end_time"] <= second["start_time"], "the two runs overlapped"
        headlines = sorted(r["state"]["message"] for r in runs)
        assert headlines == ["0 image(s) published", "1 image(s) published"], headlines
        assert "ngc2001" in (repo / "index.wtml").read_text()
        assert not list((tmp_path / "work").rglob("*.partial"))
        health = httpx.get(f"http://127.0.0.1:{health_port}/health", timeout=10)
        assert health.status_code == 200, health.text
        _run_deployment("prepare-workspace/prepare", {"workspace": str(ws)}, env)
        _run_deployment("calibration-cascade/calibrate-night", {"workspace": str(ws)}, env)
        reduced = sorted((ws / "sessions" / "base" / "reduced").rglob("*_RED.fits"))
        assert len(reduced) == 5  # 7 science frames, 2 without calibrations
        assert len(list((ws / "sessions" / "base" / "reduced").rglob("*MBIAS*.fits"))) == 2
        # a night whose master flat fails QC: completed with failures, and the shipped
        # automation calls the webhook once, for that run (and for none of the clean runs)
        night_ws = tmp_path / "night"
        night_ws.mkdir()
        for frame in night_frames((48, 48)):
            write_raw_frame(night_ws / frame.name, frame.data, frame.header)
        night_id = _start_deployment(
            "process-night/night",
            {"workspace": str(night_ws), "repository": str(tmp_path / "night-repo")},
            env,
        )
        night = _finished_run(env["PREFECT_API_URL"], night_id)
        assert night["state"]["type"] == "COMPLETED", night["state"]
        assert night["state"]["name"] == "Completed with failures"
        deadline = time.monotonic() + 120
        while not calls and time.monotonic() < deadline:
            time.sleep(1)
        time.sleep(10)  # a second call, were there one, would have come by now
        assert [c["event"] for c in calls] == ["astroflow.run.degraded"], calls
        assert calls[0]["run"] == night["name"]
        assert calls[0]["failed"] == 1
        assert calls[0]["report"] == "night-report"
    finally:
        _stop(worker)
        worker_log.close()


@pytest.mark.slow
def test_prefect_ui_shows_the_night_report(prefect_server: dict[str, str], tmp_path: Path) -> None:
    """A real browser (Debian's chromium, headless, driven by playwright-core) opens the
    finished process-night run in the Prefect UI, clicks its Artifacts tab and finds the
    report's product table, the failed master flat in it, and the night's picture drawn."""
    env = prefect_server
    ws, repo = tmp_path / "ws", tmp_path / "repo"
    ws.mkdir()
    for frame in night_frames((64, 64)):
        write_raw_frame(ws / frame.name, frame.data, frame.header)
    night = subprocess.run(
        [str(Path(sys.executable).with_name("astroflow")), "night", str(ws), str(repo)],
        env=env,
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert night.returncode == 0, night.stderr[-3000:]
    api = env["PREFECT_API_URL"]
    runs = httpx.post(
        f"{api}/flow_runs/filter",
        json={"flow_runs": {"parent_task_run_id": {"is_null_": True}}, "sort": "START_TIME_DESC"},
        timeout=10,
    ).json()
    flows = {f["id"]: f["name"] for f in httpx.post(f"{api}/flows/filter", json={}).json()}
    (run,) = [r for r in runs if flows[r["flow_id"]] == "process-night"][:1]
    shot = tmp_path / "artifacts.png"
    browser = subprocess.run(
        [
            "node",
            str(ROOT / "tests" / "ui" / "artifacts.mjs"),
            api.removesuffix("/api"),
            run["id"],
            "night-report",
            "QC failed: cold_fraction",  # a reason, shown whole
            str(shot),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert browser.returncode == 0, browser.stdout + browser.stderr[-2000:]
    assert '"text":true' in browser.stdout
    if os.environ.get("KEEP_SHOT"):
        shutil.copy(shot, ROOT / "night-report.png")
    assert '"fits":true' in browser.stdout, browser.stdout  # no horizontal scrolling at 1400 px
    found = json.loads(browser.stdout.strip().splitlines()[-1])
    assert found["pictures"] >= 1, found  # the night's FWHM and sky picture, drawn
    assert shot.stat().st_size > 10_000  # a real screenshot of the rendered table


@pytest.mark.slow
@pytest.mark.azure
def test_a_night_retried_after_its_repository_came_back_redoes_only_the_rest(
    prefect_server: dict[str, str], tmp_path: Path, own_azurite: Azurite
) -> None:
    """The `night` deployment with its Azure repository down: calibrated, then Failed at
    publish (unreachable). `prefect flow-run retry` once the repository is back: the same run
    makes no product again and publishes every image."""
    env = prefect_server
    subprocess.run(
        [PREFECT, "work-pool", "create", "astroflow", "--type", "process", "--overwrite"],
        env=env,
        capture_output=True,
        check=False,
    )
    _run(
        [PREFECT, "--no-prompt", "deploy", "--prefect-file", "deployments/prefect.yaml", "--all"],
        env,
    )
    ws = tmp_path / "night"
    ws.mkdir()
    for frame in night_frames((48, 48)):
        write_raw_frame(ws / frame.name, frame.data, frame.header)
    own_azurite.kill()  # the repository is down when the night runs
    worker_env = {**env, "NIGHT_AZ": own_azurite.conn, "ASTROFLOW_HTTP_ATTEMPTS": "1"}
    worker_log = open(tmp_path / "worker.log", "w")  # noqa: SIM115 - closed below
    worker = subprocess.Popen(
        [PREFECT, "worker", "start", "--pool", "astroflow"],
        env=worker_env,
        cwd=tmp_path,
        stdout=worker_log,
        stderr=subprocess.STDOUT,
    )
    try:
        params = {
            "workspace": str(ws),
            "repository": "az://night/wwt",
            "azure_conn_env": "NIGHT_AZ",
        }
        run_id = _start_deployment("process-night/night", params, env)
        first = _finished_run(env["PREFECT_API_URL"], run_id)
        assert first["state"]["type"] == "FAILED", first["state"]
        assert "unreachable" in first["state"]["message"], first["state"]["message"]
        made = sorted(p.name for p in (ws / "sessions").rglob("*.fits"))
        assert any(name.endswith("_RED.fits") for name in made)  # calibrated before it failed
        stamps = {p: p.stat().st_mtime_ns for p in (ws / "sessions").rglob("*.fits")}
        own_azurite.start_again()  # the repository is back (empty)
        _run([PREFECT, "flow-run", "retry", run_id], env)
        second = _finished_run(env["PREFECT_API_URL"], run_id)
        assert second["state"]["type"] == "COMPLETED", second["state"]
        # no product made again: every file as the first attempt left it (the retry reads
        # what the first attempt's recipe runs returned, or finds the products up to date)
        assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
        message = second["state"]["message"]
        assert message.endswith("; 3 image(s) published"), message  # what was not done
    finally:
        _stop(worker)
        worker_log.close()


_SERVE = "import sys; from astroflow.flows.cli import main; sys.argv[0] = 'astroflow'; main()"


@pytest.mark.slow
def test_serve_from_a_wheel_registers_every_deployment(
    prefect_server: dict[str, str], tmp_path: Path
) -> None:
    """`astroflow serve`, astroflow installed from its wheel in a folder of its own and run
    from another folder, with a copy of the deployments file holding an interval and an rrule
    schedule: every deployment registered, the schedules read back with their parameters."""
    from tests.deployments.test_serve import NIGHTLY, TWO_SCHEDULES

    env = prefect_server
    served_env = _wheel_env(env, tmp_path)
    site = Path(served_env["PYTHONPATH"])
    shipped = (site / "astroflow" / "deployments" / "prefect.yaml").read_text(encoding="utf-8")
    copy = tmp_path / "prefect.yaml"
    copy.write_text(shipped.replace(NIGHTLY, TWO_SCHEDULES, 1), encoding="utf-8")
    log = open(tmp_path / "serve.log", "w")  # noqa: SIM115 - closed below
    serve = subprocess.Popen(
        [sys.executable, "-c", _SERVE, "serve", "--prefect-file", str(copy)],
        env=served_env,
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    api = env["PREFECT_API_URL"]
    try:
        deadline = time.monotonic() + 180
        while True:
            found = httpx.post(f"{api}/deployments/filter", json={}, timeout=10).json()
            served = {d["name"]: d for d in found if d["name"].endswith("-served")}
            if len(served) == len(DEPLOYMENTS) or serve.poll() is not None:
                break
            assert time.monotonic() < deadline, sorted(served)
            time.sleep(1)
        assert set(served) == {f"{name}-served" for name in DEPLOYMENTS}, (
            tmp_path / "serve.log"
        ).read_text()[-3000:]
        nightly = served["nightly-ingest-served"]
        by_kind = {
            ("interval" if "interval" in s["schedule"] else "rrule"): s
            for s in nightly["schedules"]
        }
        assert by_kind["interval"]["schedule"]["interval"] == 3600
        assert by_kind["interval"]["parameters"] == {"limit": 5}
        assert by_kind["interval"]["slug"] == "hourly"
        assert "FREQ=WEEKLY;BYDAY=MO,WE,FR" in by_kind["rrule"]["schedule"]["rrule"]
        assert by_kind["rrule"]["parameters"] == {"force": True}
        limit = nightly.get("global_concurrency_limit") or {}
        assert limit.get("limit") == 1, sorted(nightly)  # one run at a time, the rest queued
        assert nightly["concurrency_options"]["collision_strategy"] == "ENQUEUE"
    finally:
        _stop(serve)
        log.close()

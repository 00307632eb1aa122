"""Commands of the ingest pipeline and of repositories: fetch, process, publish, reindex,
ingest, ignore-rejects, repo check."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from astroflow.flows.cli.common import (
    AzureBlock,
    AzureConnEnv,
    DaskOpt,
    Repo,
    WorkDirArg,
    app,
    fail,
    print_summaries,
    run_stage,
    table,
    task_runner,
)

repo_app = typer.Typer(help="Inspect data repositories.", no_args_is_help=True)
app.add_typer(repo_app, name="repo")


@repo_app.command("check")
def repo_check(
    url: Annotated[str, typer.Argument(help="Repository URL or local path.")],
    azure_conn_env: AzureConnEnv = None,
    azure_block: AzureBlock = None,
) -> None:
    """Open a repository, list its top level, and report reachability and write permission."""
    from astroflow.models.errors import AstroflowError
    from astroflow.storage.ingest.repository_ref import RepositoryRef

    try:
        repo = RepositoryRef.of(url, azure_conn_env, azure_block).open()
    except AstroflowError as exc:
        raise fail(str(exc)) from None
    result = repo.check()
    typer.echo(f"repository: {result.url} ({result.backend})")
    typer.echo(f"reachable:  {'yes' if result.reachable else 'no'}")
    typer.echo(f"writable:   {'yes' if result.writable else 'no'}")
    if result.reachable:
        shown = ", ".join(result.entries[:20]) or "(empty)"
        more = f" ... ({len(result.entries)} entries)" if len(result.entries) > 20 else ""
        typer.echo(f"top level:  {shown}{more}")
    if result.error:
        typer.echo(f"error:      {result.error}")
    if not result.ok:
        raise typer.Exit(1)


Force = Annotated[bool, typer.Option(help="Fetch even published images.")]
Limit = Annotated[int | None, typer.Option(help="Fetch at most this many.")]


PngLevel = Annotated[int, typer.Option(min=0, max=9, help="PNG deflate level (1-3: ISA-L).")]


@app.command("fetch")
def fetch_cmd(
    repo: Repo,
    workdir: WorkDirArg,
    azure_conn_env: AzureConnEnv = None,
    azure_block: AzureBlock = None,
    force: Force = False,
    limit: Limit = None,
) -> None:
    """Download new or changed images from the repository's source into WORKDIR/cache_todo."""
    from astroflow.flows.ingest import fetch_images

    print_summaries(
        run_stage(
            fetch_images,
            repository=repo,
            work_dir=workdir,
            azure_conn_env=azure_conn_env,
            azure_block=azure_block,
            force=force,
            limit=limit,
        )
    )


@app.command("ingest")
def ingest_cmd(
    repo: Repo,
    workdir: WorkDirArg,
    azure_conn_env: AzureConnEnv = None,
    azure_block: AzureBlock = None,
    force: Force = False,
    limit: Limit = None,
    png_level: PngLevel = 1,
    dask: DaskOpt = None,
) -> None:
    """fetch, process, publish and reindex in one run (images tiled on Dask with --dask)."""
    from astroflow.flows.ingest import ingest_images

    print_summaries(
        run_stage(
            ingest_images,
            repository=repo,
            work_dir=workdir,
            azure_conn_env=azure_conn_env,
            azure_block=azure_block,
            force=force,
            limit=limit,
            png_level=png_level,
            task_runner=task_runner(dask),
        )
    )


@app.command("process")
def process_cmd(
    repo: Repo,
    workdir: WorkDirArg,
    azure_conn_env: AzureConnEnv = None,
    azure_block: AzureBlock = None,
    png_level: PngLevel = 1,
    dask: DaskOpt = None,
) -> None:
    """Tile fetched images into WORKDIR/out_todo (tiles, thumbnail, WTML); on Dask with
    --dask."""
    from astroflow.flows.ingest import process_images

    print_summaries(
        run_stage(
            process_images,
            repository=repo,
            work_dir=workdir,
            azure_conn_env=azure_conn_env,
            azure_block=azure_block,
            png_level=png_level,
            task_runner=task_runner(dask),
        )
    )


@app.command("publish")
def publish_cmd(
    repo: Repo,
    workdir: WorkDirArg,
    azure_conn_env: AzureConnEnv = None,
    azure_block: AzureBlock = None,
) -> None:
    """Upload processed images to the repository, index.wtml last."""
    from astroflow.flows.ingest import publish_images

    print_summaries(
        run_stage(
            publish_images,
            repository=repo,
            work_dir=workdir,
            azure_conn_env=azure_conn_env,
            azure_block=azure_block,
        )
    )


@app.command("reindex")
def reindex_cmd(
    repo: Repo,
    workdir: Annotated[str | None, typer.Argument(help="Unused; accepted for symmetry.")] = None,
    azure_conn_env: AzureConnEnv = None,
    azure_block: AzureBlock = None,
) -> None:
    """Rewrite the repository's root index.wtml from the published images, newest first."""
    from astroflow.flows.ingest import reindex_repository

    print_summaries(
        run_stage(
            reindex_repository,
            repository=repo,
            azure_conn_env=azure_conn_env,
            azure_block=azure_block,
        )
    )


@app.command("ignore-rejects")
def ignore_rejects_cmd(
    repo: Repo,
    workdir: WorkDirArg,
    azure_conn_env: AzureConnEnv = None,
    azure_block: AzureBlock = None,
) -> None:
    """Write skip.flag into the repository for every candidate fetch rejected."""
    from astroflow.flows.ingest import ignore_rejects
    from astroflow.models.errors import AstroflowError
    from astroflow.storage.ingest.repository_ref import RepositoryRef

    try:
        ref = RepositoryRef.of(repo, azure_conn_env, azure_block)
    except AstroflowError as exc:
        raise fail(str(exc)) from None
    written, errors = run_stage(ignore_rejects, repository=ref, work_dir=workdir)
    typer.echo(f"ignore-rejects: written={len(written)} failed={len(errors)}")
    for report in errors.reports:
        typer.echo(f"  {report.one_line()}")


@app.command("review")
def review_cmd(repo: Repo, workdir: WorkDirArg) -> None:
    """List the processed images waiting for review, with their decisions."""
    from astroflow.flows import review
    from astroflow.storage.ingest.workdir import WorkDir

    wd = WorkDir(workdir)
    decisions = wd.decisions()
    rows = [
        [image_id, name, size, position, tiles, _decision(decisions.get(image_id))]
        for image_id, name, _thumb, size, position, tiles in review.image_rows(
            wd, wd.ids("out_todo")
        )
    ]
    table(["id", "name", "size", "position", "tiles", "decision"], rows)


def _decision(decision: Any) -> str:
    if decision is None:
        return "waiting"
    return decision.decision + (f": {decision.reason}" if decision.reason else "")


def _decide(workdir: str, ids: list[str], decision: str, reason: str) -> None:
    from astroflow.models.ingest import ReviewDecision
    from astroflow.tasks.ingest_work import record_decisions

    for image_id in ids:
        run_stage(
            record_decisions,
            work_dir=workdir,
            decisions=[ReviewDecision(image_id=image_id, decision=decision, reason=reason)],
        )
        typer.echo(f"{image_id}: {decision}")


ImageIds = Annotated[list[str], typer.Argument(metavar="ID...", help="Image ids.")]


@app.command("approve")
def approve_cmd(repo: Repo, workdir: WorkDirArg, ids: ImageIds) -> None:
    """Approve processed images: the next publish uploads them."""
    _decide(workdir, ids, "approved", "")


@app.command("reject")
def reject_cmd(
    repo: Repo,
    workdir: WorkDirArg,
    ids: ImageIds,
    reason: Annotated[str, typer.Option("--reason", help="Why (kept in skip.flag).")],
) -> None:
    """Reject processed images: the next publish writes skip.flag for them instead."""
    _decide(workdir, ids, "rejected", reason)

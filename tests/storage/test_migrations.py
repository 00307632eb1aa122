"""Schema migrations move data, not only columns: 0003 takes the fingerprint and the claim out
of the status messages of a 0.1 database."""

from __future__ import annotations

import uuid
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from astroflow.storage.database import MIGRATIONS, Database
from astroflow.storage.organiser import catalog


def test_upgrade_to_claims_as_rows_moves_them_out_of_the_messages(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'astroflow.db'}"
    engine = sa.create_engine(url)
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0002")
        for product, message in [
            ("made", "ok [inputs 1111]"),
            ("bad", "QC failed: mean=0.5 outside [0.9, 1.1] [inputs 2222]"),
            ("running", "started by somehost:4242:77 [inputs 3333]"),
            ("odd", None),
        ]:
            conn.execute(
                sa.text(
                    "INSERT INTO product_status (_id, session, product, status, message) "
                    "VALUES (:id, 'base', :product, :status, :message)"
                ),
                {
                    "id": uuid.uuid4().hex,
                    "product": product,
                    "status": "pass" if product == "made" else "fail",
                    "message": message,
                },
            )
    engine.dispose()
    rows = catalog.status_rows(Database(tmp_path, url), "base")  # migrates to head
    assert (rows["made"].message, rows["made"].inputs) == ("ok", "1111")
    assert rows["bad"].message == "QC failed: mean=0.5 outside [0.9, 1.1]"
    assert rows["bad"].inputs == "2222"
    assert not rows["bad"].claimed
    running = rows["running"]
    assert (running.owner_host, running.owner_pid, running.inputs) == ("somehost", 4242, "3333")
    assert running.claimed
    assert catalog.claim_state(running) == "running"  # another host: cannot tell, so alive
    assert rows["odd"].message is None

"""The notebook layer's pure parts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import cast

import pytest

import reglab
from reglab.auth.htpasswd import Htpasswd
from reglab.base.progress import LayerTotals, Progress
from reglab.lab import checks

ROOT = Path(__file__).resolve().parents[2]


def test_layer_totals_add_up_bytes_over_layers() -> None:
    totals = LayerTotals()
    assert totals.summary("pull") == "pull: 0 layer(s) done, 0.0/0.0 MB"
    totals.add(Progress("push", "Pushing", "a", 1_000_000, 4_000_000))
    totals.add(Progress("push", "Pushing", "b", 0, 2_000_000))
    totals.add(Progress("push", "Pushed", "b"))
    assert (totals.current, totals.total) == (3_000_000, 6_000_000)
    assert totals.summary("push") == "push: 1 layer(s) done, 3.0/6.0 MB"


def test_pure_checks_fail(tmp_path: Path) -> None:
    with pytest.raises(checks.CheckFailed, match="was accepted"):
        checks.push_refused(None, "no basic auth credentials")
    with pytest.raises(checks.CheckFailed, match="another reason"):
        checks.push_refused("connection refused", "no basic auth credentials")
    with pytest.raises(checks.CheckFailed, match="got 1, expected 2"):
        checks.same(1, 2, "count", "fix it")
    with pytest.raises(checks.CheckFailed, match="missing or empty"):
        checks.file_exists(tmp_path / "nope", "file")
    users = Htpasswd(tmp_path / "htpasswd")
    users.add("moby", "right")
    users.save()
    with pytest.raises(checks.CheckFailed, match="no matching entry"):
        checks.htpasswd_matches(users.path, reglab.Credentials("moby", "wrong"))


def test_the_learners_copy_has_no_outputs_and_keeps_their_work(tmp_path: Path) -> None:
    from reglab.lab.copies import make_learner_copies

    source = ROOT / "notebooks"
    written = make_learner_copies(source, tmp_path)
    assert [p.name for p in written] == sorted(p.name for p in source.glob("[0-9][0-9]-*.ipynb"))
    for path in written:
        cells = json.loads(path.read_text())["cells"]
        code = [c for c in cells if c["cell_type"] == "code"]
        assert code and all(c["outputs"] == [] and c["execution_count"] is None for c in code)
        assert not [c for c in code if "solution" in c["metadata"].get("tags", [])]
    assert (tmp_path / "images" / "bcrypt-cost.png").is_file()
    mine = tmp_path / "01-local-registry.ipynb"
    mine.write_text(mine.read_text().replace("# nothing to write here", "# my own note"))
    assert make_learner_copies(source, tmp_path) == []  # the learner's work is kept
    assert "# my own note" in mine.read_text()
    assert make_learner_copies(source, tmp_path, reset=True)
    assert "# my own note" not in mine.read_text()


def test_the_replica_checks_fail_on_what_would_be_wrong() -> None:
    from reglab.lab.measure import PullStream, UploadStep
    from reglab.swarm import SwarmRegistry

    digest, other = "sha256:" + "a" * 64, "sha256:" + "b" * 64
    with pytest.raises(checks.CheckFailed, match="2 replica"):
        checks.replicas_agree({"replica1": digest, "replica2": digest}, digest, 3)
    with pytest.raises(checks.CheckFailed, match="replica2 served another digest"):
        checks.replicas_agree({"replica1": digest, "replica2": other}, digest, 2)
    checks.replicas_agree({"replica1": digest, "replica2": digest}, digest, 2)
    with pytest.raises(checks.CheckFailed, match="bucket holds"):
        checks.bucket_grew(100, 100)
    refused = [UploadStep("POST", "replica1", 202), UploadStep("PATCH", "odd", 404, "INVALID")]
    with pytest.raises(checks.CheckFailed, match="did not commit"):
        checks.upload_committed(refused)
    one_replica = [UploadStep(m, "replica1", s) for m, s in (("POST", 202), ("PUT", 201))]
    with pytest.raises(checks.CheckFailed, match="one replica"):
        checks.upload_committed(one_replica)
    # the check reads only the counts: no registry is asked
    stream = PullStream(registry=cast(SwarmRegistry, None), auth=("a", "b"), repository="r")
    stream.ok, stream.failed = 250, ["cannot connect"]
    with pytest.raises(checks.CheckFailed, match="1 of 251 requests failed"):
        checks.no_failed_requests(stream)
    stream.failed = []
    stream.ok = 120
    with pytest.raises(checks.CheckFailed, match="only 120"):
        checks.no_failed_requests(stream)

"""Training-set audit: every training image ranked by score, suspects = score >= the stored threshold."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from core.cli import main
from core.modelfile import read_meta
from core.progress import last_progress
from core.training import TrainOptions
from core.workflow import TrainRequest, train_model
from core.workflow.audit import audit_training_set


@pytest.fixture(scope="module")
def contaminated(tiny_demo: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[str]]:
    """The tiny demo with two defective test images moved into train/good, and a model trained on it."""
    root = tmp_path_factory.mktemp("contaminated") / "data"
    shutil.copytree(tiny_demo, root)
    moved = []
    for i, image in enumerate(sorted((root / "test").glob("[!g]*/*.png"))[:2]):
        target = root / "train" / "good" / f"moved_{i}.png"
        shutil.move(image, target)
        moved.append(target.name)
    out = root.parent / "model.safetensors"
    request = TrainRequest(root, "ae-l2", "fast", {"epochs": 1, "batch_size": 4}, out,
                           options=TrainOptions(device="cpu"))
    assert last_progress(train_model(request)).phase == "done"
    return root, out, moved


def test_audit_ranks_every_training_image(contaminated):
    root, model, moved = contaminated
    entries = last_progress(audit_training_set(model, device="cpu")).result
    assert sorted(e.path.name for e in entries) == sorted(p.name for p in (root / "train" / "good").iterdir())
    assert [e.score for e in entries] == sorted((e.score for e in entries), reverse=True)
    threshold = read_meta(model).image_threshold()
    assert all(e.suspect == (e.score >= threshold) for e in entries)


def test_audit_cli_prints_ranking_and_writes_csv(contaminated, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    _, model, _ = contaminated
    assert main(["audit", "--model", str(model), "--top", "3", "--csv", str(tmp_path / "a.csv"),
                 "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "training images score above the label-free threshold" in out and "rank" in out
    rows = list(csv.DictReader((tmp_path / "a.csv").open(encoding="utf-8")))
    assert len(rows) == 14 and float(rows[0]["score"]) >= float(rows[-1]["score"])


def test_audit_recall_counts_injected_images_by_hand() -> None:
    from core.workflow.audit import audit_recall

    # scores ranked: 0.9 (injected), 0.8, 0.7 (injected), 0.1 (injected), 0.0; three injected -> top 3
    # holds two of them; threshold 0.75 flags 0.9 and 0.8, one injected. Ranking AUROC: injected scores
    # {0.9, 0.7, 0.1} vs clean {0.8, 0.0}: pairs won 2 + 1 + 1 = 4 of 6.
    result = audit_recall([True, False, True, True, False], [0.9, 0.8, 0.7, 0.1, 0.0], threshold=0.75)
    assert result == {"injected": 3, "in_top_n": 2, "flagged": 2, "flagged_injected": 1,
                      "ranking_auroc": pytest.approx(4 / 6)}
    assert audit_recall([False, False], [0.3, 0.2], 1.0)["ranking_auroc"] is None  # nothing injected

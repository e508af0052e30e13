"""Model files: round trip, metadata validation, no unpickling."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from core.modelfile import ModelFileError, ModelMeta, load_model, read_meta, save_model
from core.models import build_model


def _meta(model, **changes) -> ModelMeta:
    values = dict(method=model.method, preset="fast", config=model.config.to_dict(), in_channels=3,
                  input_size=128, default_map=model.default_map, map_names=list(model.map_names),
                  thresholds={"ssim": {"image": {"value": 0.5, "how": "test"}, "pixel": {"value": 0.2, "how": "t"}}})
    values.update(changes)
    return ModelMeta(**values)


def test_round_trip_restores_weights_config_and_thresholds(tmp_path: Path):
    model = build_model("ae-ssim", "fast", in_channels=3, latent_dim=20)
    path = save_model(tmp_path / "m.safetensors", model, _meta(model))
    loaded, meta = load_model(path)
    assert type(loaded) is type(model) and loaded.config == model.config
    assert meta.image_threshold() == 0.5 and meta.pixel_threshold("ssim") == 0.2
    for key, value in model.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key])
    x = torch.rand(1, 3, 128, 128)
    assert torch.allclose(model.eval()(x), loaded(x))


def test_no_leftover_temp_files(tmp_path: Path):
    model = build_model("ae-l2", "fast")
    save_model(tmp_path / "m.safetensors", model, _meta(model))
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]


def _write_with_metadata(path: Path, metadata: dict[str, str]) -> Path:
    save_file({"w": torch.zeros(1)}, str(path), metadata=metadata)
    return path


@pytest.mark.parametrize("metadata, reason", [
    ({}, "no DefectLab metadata"),
    ({"defectlab_model": "{not json"}, "not valid JSON"),
    ({"defectlab_model": json.dumps({"format_version": 99})}, "format version 99 is not supported"),
    ({"defectlab_model": json.dumps({"format_version": 1, "method": "ae-l2"})}, "metadata lacks"),
])
def test_invalid_metadata_is_reported_with_the_file(tmp_path: Path, metadata, reason):
    path = _write_with_metadata(tmp_path / "bad.safetensors", metadata)
    with pytest.raises(ModelFileError, match=reason) as info:
        read_meta(path)
    assert str(path) in str(info.value)


def test_unknown_method_and_mismatched_weights_are_errors(tmp_path: Path):
    model = build_model("ae-l2", "fast")
    path = save_model(tmp_path / "m.safetensors", model, _meta(model, method="no-such-method"))
    with pytest.raises(ModelFileError, match="unknown method 'no-such-method'; known methods: ae-l2, ae-ssim"):
        load_model(path)
    config = dict(model.config.to_dict(), latent_dim=7)
    path = save_model(tmp_path / "m2.safetensors", model, _meta(model, config=config))
    with pytest.raises(ModelFileError, match="weights do not match"):
        load_model(path)


def test_pickle_files_and_missing_files_are_rejected(tmp_path: Path):
    pickled = tmp_path / "model.safetensors"
    torch.save({"w": torch.zeros(1)}, pickled)  # a pickle disguised by its name
    with pytest.raises(ModelFileError, match="not a safetensors model file"):
        load_model(pickled)
    with pytest.raises(ModelFileError, match="file not found"):
        load_model(tmp_path / "absent.safetensors")

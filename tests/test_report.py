"""The sparsity report and the checkpoint reader behind `l1reg inspect`."""

import json
import struct
from importlib.util import find_spec

import numpy as np
import pytest

from l1reg.checkpoints import CheckpointError, load_checkpoint
from l1reg.report import sparsity_report


def _weights():
    first = np.arange(1.0, 41.0).reshape(4, 10)  # outputs x inputs, torch layout
    first[:, 3:] = 0.0  # inputs 3..9 removed
    first[2] = 0.0  # neuron 2 removed
    return {
        "0.weight": first,
        "0.bias": np.array([0.5, 0.0, -1.0, 0.0]),
        "2.weight": -np.ones((3, 4)),
    }


def test_report_counts_zeros_inputs_and_neurons():
    report = sparsity_report(_weights().items())
    first, bias, second = report.tensors
    assert (first.zeros, first.size, first.inputs_kept, first.inputs) == (31, 40, 3, 10)
    assert (first.outputs_kept, first.outputs) == (3, 4)
    assert first.l1_norm == 138.0  # rows 0, 1, 3 of columns 0..2: 6 + 36 + 96
    assert bias.inputs is None and bias.zeros == 2
    assert second.fraction == 0.0 and second.l1_norm == 12.0
    assert report.zeros == 33 and report.size == 56
    assert report.fraction == pytest.approx(33 / 56)


def test_keras_layout_reads_the_transpose_the_same():
    torch_layout = sparsity_report(_weights().items())
    keras_layout = sparsity_report(
        ((name, value.T) for name, value in _weights().items()), input_axis=-2, output_axis=-1
    )
    assert torch_layout.to_dict() != keras_layout.to_dict()  # shapes differ
    for a, b in zip(torch_layout.tensors, keras_layout.tensors):
        assert (a.inputs_kept, a.outputs_kept, a.zeros) == (b.inputs_kept, b.outputs_kept, b.zeros)


def test_table_and_dict_agree():
    report = sparsity_report(_weights().items())
    text = str(report)
    assert "0.weight" in text and "31 / 40" in text and "3 / 10" in text
    assert text.splitlines()[-1].split()[:4] == ["total", "33", "/", "56"]
    as_dict = json.loads(json.dumps(report.to_dict()))
    assert as_dict["total"]["zeros"] == 33
    assert [row["name"] for row in as_dict["tensors"]] == ["0.weight", "0.bias", "2.weight"]


def test_npz_round_trip(tmp_path):
    path = tmp_path / "model.npz"
    np.savez(path, **_weights())
    arrays = load_checkpoint(path)
    assert list(arrays) == ["0.weight", "0.bias", "2.weight"]
    np.testing.assert_array_equal(arrays["0.weight"], _weights()["0.weight"])


def test_safetensors_with_bfloat16(tmp_path):
    torch = pytest.importorskip("torch")
    safetensors_torch = pytest.importorskip("safetensors.torch")
    tensors = {
        "a": torch.tensor([[1.5, -2.0], [0.0, 3.25]], dtype=torch.bfloat16),
        "b": torch.arange(6, dtype=torch.float32).reshape(2, 3),
        "c": torch.tensor([1, -2], dtype=torch.int64),
    }
    path = tmp_path / "model.safetensors"
    safetensors_torch.save_file(tensors, str(path))
    arrays = load_checkpoint(path)
    np.testing.assert_array_equal(arrays["a"], [[1.5, -2.0], [0.0, 3.25]])
    assert arrays["a"].dtype == np.float32
    np.testing.assert_array_equal(arrays["b"], np.arange(6.0).reshape(2, 3))
    np.testing.assert_array_equal(arrays["c"], [1, -2])


def test_torch_state_dict_nested(tmp_path):
    torch = pytest.importorskip("torch")
    model = torch.nn.Linear(3, 2)
    path = tmp_path / "checkpoint.pt"
    torch.save({"model": model.state_dict(), "epoch": 3}, path)
    arrays = load_checkpoint(path)
    assert sorted(arrays) == ["model.bias", "model.weight"]
    np.testing.assert_array_equal(arrays["model.weight"], model.weight.detach().numpy())


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all", struct.pack("<Q", 10**9)])
@pytest.mark.parametrize("suffix", [".safetensors", ".npz", ".pt"])
def test_unreadable_files_raise_one_line(tmp_path, content, suffix):
    path = tmp_path / f"broken{suffix}"
    path.write_bytes(content)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    if suffix == ".pt":
        assert ("not a PyTorch checkpoint" in message) == (find_spec("torch") is not None)


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="no such file"):
        load_checkpoint(tmp_path / "absent.npz")

"""The int8 rewrite (lib/int8_graph) on a small hand-made graph: a feed-forward block
(MatMul, bias, erf GELU, MatMul, bias) shaped like the encoder's, run by ONNX Runtime.
Its input stands for a LayerNorm output (calibrated scale), the GELU output gets one scale
per token."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from sentiment_assets.lib.encoding.int8_graph import (
    activation_ranges,
    quantize_graph,
    weight_matmul_groups,
)

WIDTH, HIDDEN, OUT = 24, 64, 8


def feed_forward(path: Path, with_second_bias: bool = True) -> Path:
    rng = np.random.default_rng(3)
    arrays = {
        "w_in": rng.normal(0, 0.3, (WIDTH, HIDDEN)),
        "b_in": rng.normal(0, 0.1, HIDDEN),
        "w_out": rng.normal(0, 0.3, (HIDDEN, OUT)),
        "b_out": rng.normal(0, 0.1, OUT),
        "root2": np.array(np.sqrt(2.0)),
        "one": np.array(1.0),
        "half": np.array(0.5),
    }
    # GELU as torch's exporter writes it: x * (1 + erf(x / sqrt 2)) * 0.5.
    nodes = [
        helper.make_node("MatMul", ["x", "w_in"], ["h0"], name="in/MatMul"),
        helper.make_node("Add", ["b_in", "h0"], ["h"]),
        helper.make_node("Div", ["h", "root2"], ["scaled"]),
        helper.make_node("Erf", ["scaled"], ["erf"]),
        helper.make_node("Add", ["erf", "one"], ["erf1"]),
        helper.make_node("Mul", ["h", "erf1"], ["g0"]),
        helper.make_node("Mul", ["g0", "half"], ["gelu"]),
        helper.make_node("MatMul", ["gelu", "w_out"], ["y0" if with_second_bias else "y"]),
    ]
    if with_second_bias:
        nodes.append(helper.make_node("Add", ["b_out", "y0"], ["y"]))
    graph = helper.make_graph(
        nodes,
        "feed_forward",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "tokens", WIDTH])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", "tokens", OUT])],
        [numpy_helper.from_array(v.astype(np.float32), k) for k, v in arrays.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=9)
    onnx.save(model, str(path))
    return path


def run(path: Path, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x.astype(np.float32)})[0]


def activations(seed: int, batch: int = 4, tokens: int = 6) -> np.ndarray:
    x = np.random.default_rng(seed).normal(0, 1, (batch, tokens, WIDTH))
    x[..., 5] *= 20  # an outlier channel, as LayerNorm outputs have
    return x.astype(np.float32)


def integer_products_saturate() -> bool:
    """True where ONNX Runtime's u8 x s8 MatMulInteger saturates (AVX2 without VNNI: pairs of
    products are summed in 16 bits). There the int8 graph is far from fp32, the quality gate
    refuses it and the pipeline runs fp32 (tests/unit/test_encoder_precision.py checks that
    path); the closeness tests below can only hold on CPUs whose kernel sums exactly."""
    a = helper.make_tensor_value_info("A", TensorProto.UINT8, [1, 64])
    b = helper.make_tensor_value_info("B", TensorProto.INT8, [64, 1])
    y = helper.make_tensor_value_info("Y", TensorProto.INT32, [1, 1])
    graph = helper.make_graph(
        [helper.make_node("MatMulInteger", ["A", "B"], ["Y"])], "g", [a, b], [y]
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    ones = {"A": np.full((1, 64), 255, np.uint8), "B": np.full((64, 1), 127, np.int8)}
    return int(session.run(None, ones)[0][0, 0]) != 255 * 127 * 64


SATURATING_CPU = pytest.mark.skipif(
    integer_products_saturate(),
    reason="ONNX Runtime's u8 x s8 integer product saturates on this CPU (AVX2 without VNNI); "
    "the quality gate refuses the int8 graph here and fp32 is used",
)


@pytest.fixture
def quantized(tmp_path: Path) -> tuple[Path, Path, dict]:
    fp32 = feed_forward(tmp_path / "fp32.onnx")
    ranges = activation_ranges(fp32, [{"x": activations(seed)} for seed in range(3)])
    target = tmp_path / "int8.onnx"
    return fp32, target, quantize_graph(fp32, target, ranges)


def test_calibration_keeps_the_largest_magnitude_of_each_input_channel(tmp_path: Path) -> None:
    fp32 = feed_forward(tmp_path / "fp32.onnx")
    batches = [activations(0), -3 * activations(1)]
    ranges = activation_ranges(fp32, [{"x": b} for b in batches])
    expected = np.abs(np.concatenate([b.reshape(-1, WIDTH) for b in batches])).max(axis=0)
    np.testing.assert_allclose(ranges["x"], expected)
    assert set(ranges) == set(weight_matmul_groups(onnx.load(str(fp32))))


@SATURATING_CPU
def test_the_rewrite_computes_the_block_in_integers_close_to_fp32(quantized) -> None:
    fp32, target, rewrite = quantized
    assert rewrite == {
        "matrix_products": 2,
        "calibrated_groups": 1,
        "per_token_groups": 1,
        "biases_in_products": 1,
        "smoothing_alpha": {"calibrated": 0.8, "per_token": 0.5},
    }
    ops = [node.op_type for node in onnx.load(str(target)).graph.node]
    assert ops.count("MatMulIntegerToFloat") == 2 and "MatMul" not in ops
    # The calibrated product took its bias in; the GELU-fed one keeps its Add (the graph's
    # own GELU has one more).
    assert ops.count("Add") == 1 + 1 + 1
    x = activations(9)
    expected, got = run(fp32, x), run(target, x)
    # Within a couple of int8 steps; dropping the GELU shift's bias correction (0.17 times
    # the weights' column sums) would be off by far more.
    error = np.abs(got - expected).max()
    assert 0 < error < 0.02 * np.abs(expected).max()


@SATURATING_CPU
def test_the_calibrated_product_keeps_its_bias(tmp_path: Path) -> None:
    # Only the GELU-fed product needs a bias Add after it; the first product's is folded in
    # when there is one, and a product without one is left without.
    fp32 = feed_forward(tmp_path / "fp32.onnx")
    model = onnx.load(str(fp32))
    first_add = next(node for node in model.graph.node if node.op_type == "Add")
    first_add.op_type, first_add.input[:] = "Identity", ["h0"]
    unbiased = tmp_path / "unbiased.onnx"
    onnx.save(model, str(unbiased))
    ranges = activation_ranges(unbiased, [{"x": activations(seed)} for seed in range(3)])
    rewrite = quantize_graph(unbiased, tmp_path / "int8.onnx", ranges)
    assert rewrite["biases_in_products"] == 0
    x = activations(9)
    expected, got = run(unbiased, x), run(tmp_path / "int8.onnx", x)
    assert np.abs(got - expected).max() < 0.02 * np.abs(expected).max()


def test_a_token_is_quantised_on_its_own(quantized) -> None:
    # The calibrated step is fixed and the GELU output's scale is the token's own: a token
    # far beyond the calibrated range saturates its own codes, never its neighbours'.
    _, target, _ = quantized
    quiet = activations(4, batch=1)
    loud = 1000 * activations(5, batch=1)
    alone = run(target, quiet)
    beside_loud = run(target, np.concatenate([quiet, loud]))
    np.testing.assert_array_equal(alone, beside_loud[:1])
    assert np.isfinite(beside_loud).all()


def test_a_gelu_fed_product_without_its_bias_is_refused(tmp_path: Path) -> None:
    fp32 = feed_forward(tmp_path / "fp32.onnx", with_second_bias=False)
    ranges = activation_ranges(fp32, [{"x": activations(0)}])
    with pytest.raises(ValueError, match="bias Add"):
        quantize_graph(fp32, tmp_path / "int8.onnx", ranges)

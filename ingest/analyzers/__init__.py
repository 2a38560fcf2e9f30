"""Analyzer registry and the ``VIDX_ANALYZER=auto`` choice."""

from __future__ import annotations

import logging
from collections.abc import Callable

from ingest.analyzers.base import Analysis, AnalysisError, Analyzer, VideoJob
from vidx.config import AnalyzerChoice, Settings

log = logging.getLogger("ingest.analyzers")

__all__ = ["Analysis", "AnalysisError", "Analyzer", "VideoJob", "choose_analyzer", "make_analyzer"]


def _basic(settings: Settings) -> Analyzer:
    from ingest.analyzers.basic import BasicAnalyzer

    return BasicAnalyzer(settings)


def _vlm(kind: str) -> Callable[[Settings], Analyzer]:
    def build(settings: Settings) -> Analyzer:
        from ingest.vlm.analyzer import VlmAnalyzer
        from ingest.vlm.registry import make_provider

        return VlmAnalyzer(settings, make_provider(kind, settings))

    return build


ANALYZERS: dict[str, Callable[[Settings], Analyzer]] = {
    "basic": _basic,
    "qwen3vl": _vlm("qwen3vl"),
    "openai": _vlm("openai"),
}


def choose_analyzer(settings: Settings) -> tuple[str, str]:
    """Resolve ``auto`` to a concrete analyzer; returns (name, reason)."""
    if settings.analyzer != AnalyzerChoice.auto.value:
        return settings.analyzer, f"VIDX_ANALYZER={settings.analyzer}"
    if settings.openai_base_url:
        return "openai", f"VIDX_OPENAI_BASE_URL is set ({settings.openai_base_url})"
    if settings.qwen_model:
        from ingest.vlm.registry import local_qwen_available

        ok, why = local_qwen_available(settings)
        if ok:
            return "qwen3vl", why
        return "basic", f"Qwen3-VL not usable: {why}; using the CPU analyzer"
    return "basic", "no VIDX_QWEN_MODEL or VIDX_OPENAI_BASE_URL configured; using the CPU analyzer"


def make_analyzer(settings: Settings) -> Analyzer:
    name, why = choose_analyzer(settings)
    log.info("analyzer: %s (%s)", name, why)
    # a name that is no built-in is a VLM provider plugin (entry-point group vidx.vlm_providers)
    return ANALYZERS.get(name, _vlm(name))(settings)

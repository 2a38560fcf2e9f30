"""Qwen3-VL event extraction: providers, prompts, parser, windows, merger."""

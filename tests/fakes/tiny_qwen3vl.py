"""A tiny, randomly initialised Qwen3-VL (dense or MoE) built offline, for CPU tests.

Lets the suite run the real transformers path (from_pretrained -> processor ->
generate() -> decode) with no downloaded weights. ``ScriptedLogits`` forces generate()
to emit a given text, so realistic model answers go through the real decode path.
Call ``vidx.torchcompat.ensure_torchvision()`` before building.
"""
# ruff: noqa: E501
from __future__ import annotations

import json
from pathlib import Path

import torch

QWEN_SPECIAL = [
    "<|endoftext|>", "<|im_start|>", "<|im_end|>",
    "<|vision_start|>", "<|vision_end|>", "<|vision_pad|>",
    "<|image_pad|>", "<|video_pad|>",
]

# Minimal Qwen-style chat template (ours; same shape as the official one:
# <|im_start|>role\n ... <|im_end|>\n, media as <|vision_start|><|X_pad|><|vision_end|>).
CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{{- '<|im_start|>' + message['role'] + '\\n' -}}"
    "{%- if message['content'] is string -%}{{- message['content'] -}}"
    "{%- else -%}{%- for c in message['content'] -%}"
    "{%- if c['type'] == 'image' or 'image' in c -%}{{- '<|vision_start|><|image_pad|><|vision_end|>' -}}"
    "{%- elif c['type'] == 'video' or 'video' in c -%}{{- '<|vision_start|><|video_pad|><|vision_end|>' -}}"
    "{%- elif 'text' in c -%}{{- c['text'] -}}{%- endif -%}"
    "{%- endfor -%}{%- endif -%}"
    "{{- '<|im_end|>\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}"
)


def build_tokenizer(vocab_size: int = 600):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import Qwen2Tokenizer

    corpus = [
        '{"start": "00:01.5", "end": "00:04.0", "description": "a person walks in", '
        '"people": ["man"], "location": "kitchen", "action": "walking", '
        '"dialogue_summary": "", "objects": ["cup", "table"], "ocr_text": "EXIT"}',
        "Localize a series of activity events in the video, output the start and end "
        "timestamp for each event, and describe each event with sentences.",
        "<0.2 seconds><1.0 seconds><2.5 seconds><10.7 seconds> mm:ss.ff json format",
        "system user assistant You are a helpful assistant. Describe this video.",
    ] * 50 + [" ".join(str(i) for i in range(200))]
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, min_frequency=1, show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    bpe.train_from_iterator(corpus, trainer)
    vocab = bpe.get_vocab()
    # tokenizers >= 0.20 serialises merges as pairs; BPE() wants a list of tuples
    merges = [tuple(m) if not isinstance(m, str) else tuple(m.split(" "))
              for m in json.loads(bpe.to_str())["model"]["merges"]]

    tok = Qwen2Tokenizer(
        vocab=vocab, merges=merges,
        unk_token=None, bos_token=None,
        eos_token="<|im_end|>", pad_token="<|endoftext|>",
        model_max_length=32768,
    )
    tok.add_special_tokens({"additional_special_tokens": QWEN_SPECIAL})
    tok.chat_template = CHAT_TEMPLATE
    return tok


# --------------------------------------------------------------------------- #
# 3. processor + 4. model
# --------------------------------------------------------------------------- #
def build_processor(tokenizer):
    from transformers import Qwen2VLImageProcessor, Qwen3VLProcessor, Qwen3VLVideoProcessor

    # Same field layout as the real checkpoint's preprocessor configs (mean/std 0.5,
    # patch 16, merge 2, temporal 2); only the pixel budgets are tiny.  The real
    # video budget is size={"shortest_edge": 4096, "longest_edge": 25165824}, fps=2,
    # min_frames=4, max_frames=768.
    image_processor = Qwen2VLImageProcessor(
        patch_size=16, temporal_patch_size=2, merge_size=2,
        image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5],
        size={"shortest_edge": 4 * 32 * 32, "longest_edge": 64 * 32 * 32},
    )
    video_processor = Qwen3VLVideoProcessor(
        patch_size=16, temporal_patch_size=2, merge_size=2,
        # total pixel budget over all frames (T*H*W), like size in the real checkpoint
        size={"shortest_edge": 2 * 32 * 32, "longest_edge": 16 * 64 * 64},
        fps=2, min_frames=4, max_frames=64,
        cap_pixels_per_frame=True, max_video_tokens=16,
    )
    return Qwen3VLProcessor(
        image_processor=image_processor, tokenizer=tokenizer,
        video_processor=video_processor, chat_template=CHAT_TEMPLATE,
    )


def build_model(tokenizer, seed: int = 0, moe: bool = False):
    from transformers import (
        Qwen3VLConfig,
        Qwen3VLForConditionalGeneration,
        Qwen3VLMoeConfig,
        Qwen3VLMoeForConditionalGeneration,
    )

    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in QWEN_SPECIAL}
    config_cls, model_cls = ((Qwen3VLMoeConfig, Qwen3VLMoeForConditionalGeneration) if moe
                             else (Qwen3VLConfig, Qwen3VLForConditionalGeneration))
    moe_kw = dict(num_experts=4, num_experts_per_tok=2, moe_intermediate_size=32,
                  decoder_sparse_step=1) if moe else {}
    config = config_cls(
        text_config=dict(**moe_kw,
            vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128,
            num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, head_dim=16,
            max_position_embeddings=4096, hidden_act="silu", rms_norm_eps=1e-6,
            # head_dim/2 = 8 rotary freqs split over (t, h, w) like the real [24, 20, 20]
            rope_parameters={"rope_type": "default", "rope_theta": 5_000_000.0,
                             "mrope_section": [4, 2, 2], "mrope_interleaved": True},
            bos_token_id=None, eos_token_id=ids["<|im_end|>"], pad_token_id=ids["<|endoftext|>"],
        ),
        vision_config=dict(
            depth=2, hidden_size=32, intermediate_size=64, num_heads=2, in_channels=3,
            patch_size=16, temporal_patch_size=2, spatial_merge_size=2,
            out_hidden_size=64, num_position_embeddings=64,  # must be a perfect square
            deepstack_visual_indexes=[0, 1],                 # <= text num_hidden_layers
        ),
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    model = model_cls(config).eval()
    model.generation_config.eos_token_id = ids["<|im_end|>"]
    model.generation_config.pad_token_id = ids["<|endoftext|>"]
    return model


def build_tiny_model_dir(model_dir: Path, moe: bool = False, seed: int = 0) -> Path:
    """Build tokenizer + processor + random model and save_pretrained() them into
    model_dir, which then loads with AutoProcessor / AutoModelForImageTextToText
    .from_pretrained(model_dir) like a real checkpoint folder.
    Call ensure_torchvision() first (before importing transformers' Qwen3-VL classes)."""
    model_dir = Path(model_dir)
    tok = build_tokenizer()
    proc = build_processor(tok)
    model = build_model(tok, seed=seed, moe=moe)
    proc.save_pretrained(model_dir)
    model.save_pretrained(model_dir)
    return model_dir


# --------------------------------------------------------------------------- #
# 5. run
# --------------------------------------------------------------------------- #
PROMPT = (
    "Localize a series of activity events in the video, output the start and end "
    "timestamp for each event, and describe each event with sentences. "
    "Provide the result in json format with 'mm:ss.ff' format for time depiction."
)


class ScriptedLogits:
    """LogitsProcessor that forces generate() to emit a fixed token script, then EOS.
    Lets a test push realistic model text (e.g. an events JSON) through the real
    generate() + batch_decode() path of a random-weight model."""

    def __init__(self, script_ids: list[int], prompt_len: int, eos_id: int):
        self.script, self.prompt_len, self.eos = list(script_ids) + [eos_id], prompt_len, eos_id

    def __call__(self, input_ids, scores):
        step = input_ids.shape[1] - self.prompt_len
        forced = self.script[min(step, len(self.script) - 1)]
        out = torch.full_like(scores, float("-inf"))
        out[:, forced] = 0.0
        return out




class BatchScriptedLogits:
    """ScriptedLogits for a batch: row i of a (left-padded) batch emits ``scripts[i]``, then
    EOS (and EOS again while the longer rows finish)."""

    def __init__(self, scripts: list[list[int]], prompt_len: int, eos_id: int):
        self.scripts = [list(s) + [eos_id] for s in scripts]
        self.prompt_len, self.eos = prompt_len, eos_id

    def __call__(self, input_ids, scores):
        step = input_ids.shape[1] - self.prompt_len
        out = torch.full_like(scores, float("-inf"))
        for row, script in enumerate(self.scripts):
            out[row, script[step] if step < len(script) else self.eos] = 0.0
        return out

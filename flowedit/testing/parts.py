"""The parts every tiny pipeline shares: in-memory tokenizers, small text encoders and VAEs, seeding and casting.

Shared choices (reported so tests can rely on them):

- VAE (:func:`autoencoder_kl`): ``block_out_channels=(8, 16)``, so ``pipe.vae_scale_factor == 2`` (the real models
  use 8; a factor other than 8 catches code that hard-codes it), ``latent_channels=4``, no quant convs (like the
  SD3 and FLUX VAEs).
- Tokenizers: CLIP is a byte-level BPE with ``</w>`` word ends, CLIP's normalizer, pre-tokenizer and
  ``<|startoftext|> ... <|endoftext|>`` template (pad = unk = eos, like openai/clip-vit-large-patch14),
  ``model_max_length=77``; T5 is a Unigram model with ``▁`` word starts, ``<pad>=0, </s>=1, <unk>=2``
  and ``model_max_length=512``. Both know about 100 common lower-case English words as whole tokens
  and spell any other word with printable ASCII characters; anything else is ``unk``. Vocabularies:
  436 (CLIP) and 196 (T5) tokens. :func:`qwen_tokenizer` is byte-level with Qwen2's chat special tokens.
- Weights are drawn with ``torch.manual_seed(seed)`` inside ``torch.random.fork_rng`` (:func:`seeded`): the
  same seed gives bitwise-identical weights and the global RNG state is left untouched; :func:`ready` puts every
  module in eval mode (no dropout) and casts it.

Only the standard library and torch are imported at module level; diffusers, transformers and tokenizers inside
the builders (the ``models`` extra).
"""

from __future__ import annotations

import collections
import contextlib
import functools
import string
from collections.abc import Iterator
from typing import Any

import torch

_WORDS = """
a an the of and with in on at to from by for is are
photo photograph picture painting drawing sketch image portrait close up view style
cat dog horse bird fish lion tiger bear rabbit fox cow sheep mouse
man woman boy girl child person people face hat glasses
car bus bike boat train plane house tree flower grass sky cloud sun moon
river lake sea beach mountain forest road city street garden field snow rain
red blue green yellow black white orange purple brown pink gray
big small old young happy sad cute sitting standing running
""".split()

_CLIP_BOS, _CLIP_EOS = "<|startoftext|>", "<|endoftext|>"
# transformers' CLIPTokenizer splits text with this regex before byte-level BPE.
_CLIP_SPLIT = r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""
_CHARS = string.ascii_letters + string.digits + string.punctuation

VAE_BLOCKS = (8, 16)  # vae_scale_factor = 2 ** (len(VAE_BLOCKS) - 1) = 2
LATENT_CHANNELS = 4


def import_models() -> tuple[Any, Any, Any]:
    """Return the ``diffusers``, ``transformers`` and ``tokenizers`` modules, or say how to get them."""
    try:
        import diffusers
        import tokenizers
        import transformers
    except ImportError as e:
        raise ImportError(
            "flowedit.testing builds diffusers pipelines and needs diffusers, transformers and tokenizers; "
            "install the models extra: pip install 'flowtoy-flowedit[models]'"
        ) from e
    return diffusers, transformers, tokenizers


@functools.lru_cache(maxsize=1)
def _learn_merges(words: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """Byte-pair merges learned from ``words`` until each is a single ``word</w>`` token.

    Plain BPE training (Sennrich et al., 2016): merge the most frequent adjacent pair, ties broken by
    the pair's text, so the result is deterministic and encoding any word of ``words`` with these
    merges gives that word back as one token (prefix chains per word would not: "to" would split "photo").
    """
    seqs = [[*word[:-1], word[-1] + "</w>"] for word in words]
    merges = []
    while True:
        counts = collections.Counter(pair for seq in seqs for pair in zip(seq, seq[1:], strict=False))
        if not counts:
            return tuple(merges)
        pair = min(counts, key=lambda p: (-counts[p], p))
        merges.append(pair)
        for seq in seqs:
            i = 0
            while i < len(seq) - 1:
                if (seq[i], seq[i + 1]) == pair:
                    seq[i : i + 2] = [seq[i] + seq[i + 1]]
                i += 1


def clip_tokenizer(transformers: Any, tokenizers: Any) -> Any:
    """A CLIP byte-level BPE tokenizer over ``_WORDS``, laid out like transformers' ``CLIPTokenizer``.

    Vocabulary: bos, eos, every printable ASCII character alone and with ``</w>``, then the tokens
    that the merges learned from ``_WORDS`` build (each word of ``_WORDS`` becomes one ``word</w>``).
    """
    from tokenizers import Regex, decoders, models, normalizers, pre_tokenizers, processors

    merges = _learn_merges(tuple(_WORDS))
    vocab = [_CLIP_BOS, _CLIP_EOS, *_CHARS, *(c + "</w>" for c in _CHARS), *(left + right for left, right in merges)]
    ids = {token: i for i, token in enumerate(dict.fromkeys(vocab))}

    bpe = models.BPE(
        vocab=ids,
        merges=list(merges),
        continuing_subword_prefix="",
        end_of_word_suffix="</w>",
        fuse_unk=False,
        unk_token=_CLIP_EOS,
    )
    backend = tokenizers.Tokenizer(bpe)
    backend.normalizer = normalizers.Sequence(
        [normalizers.NFC(), normalizers.Replace(Regex(r"\s+"), " "), normalizers.Lowercase()]
    )
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(_CLIP_SPLIT), behavior="removed", invert=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False),
        ]
    )
    backend.decoder = decoders.ByteLevel()
    backend.post_processor = processors.RobertaProcessing(
        (_CLIP_EOS, ids[_CLIP_EOS]), (_CLIP_BOS, ids[_CLIP_BOS]), trim_offsets=False, add_prefix_space=False
    )
    return transformers.CLIPTokenizerFast(
        tokenizer_object=backend,
        bos_token=_CLIP_BOS,
        eos_token=_CLIP_EOS,
        pad_token=_CLIP_EOS,
        unk_token=_CLIP_EOS,
        model_max_length=77,
    )


def t5_tokenizer(transformers: Any, tokenizers: Any) -> Any:
    """A T5 Unigram tokenizer over ``_WORDS``, laid out like transformers' ``T5Tokenizer``.

    Vocabulary: ``<pad>=0, </s>=1, <unk>=2``, ``▁``, ``▁word`` for each word, then single characters;
    no normalizer (transformers rebuilds T5 tokenizers without one on load, so none survives a
    round-trip) and no sentinel ``<extra_id_*>`` tokens.
    """
    from tokenizers import decoders, models, pre_tokenizers, processors

    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("\u2581", -2.0)]
    pieces += [("\u2581" + word, -5.0) for word in _WORDS] + [(c, -10.0) for c in _CHARS]
    backend = tokenizers.Tokenizer(models.Unigram(pieces, unk_id=2, byte_fallback=False))
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.WhitespaceSplit(),
            pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always", split=True),
        ]
    )
    backend.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always", split=True)
    backend.post_processor = processors.TemplateProcessing(
        single=["$A", "</s>"], pair=["$A", "</s>", "$B", "</s>"], special_tokens=[("</s>", 1)]
    )
    return transformers.T5TokenizerFast(
        tokenizer_object=backend,
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
        extra_ids=0,
        model_max_length=512,
    )


def clip_config(transformers: Any, tokenizer: Any, hidden: int, act: str) -> Any:
    """A 2-layer, 4-head CLIP text config whose special ids are the tokenizer's (pooling finds eos)."""
    return transformers.CLIPTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        projection_dim=hidden,
        intermediate_size=37,
        num_hidden_layers=2,  # SD3 reads hidden_states[-2]: with 2 layers that is a real layer
        num_attention_heads=4,
        max_position_embeddings=77,
        hidden_act=act,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )


def t5_encoder(transformers: Any, tokenizer: Any, d_model: int, umt5: bool = False) -> Any:
    """A 2-layer, 4-head T5 v1.1-style (gated-GELU) encoder of width ``d_model``, dropout 0 (``umt5``: UMT5's,
    whose every layer has its own relative position bias, as Wan's text encoder)."""
    config = (transformers.UMT5Config if umt5 else transformers.T5Config)(
        vocab_size=len(tokenizer),
        d_model=d_model,
        d_kv=8,
        d_ff=37,
        num_layers=2,
        num_heads=4,
        relative_attention_num_buckets=8,
        feed_forward_proj="gated-gelu",
        dropout_rate=0.0,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.pad_token_id,
    )
    return (transformers.UMT5EncoderModel if umt5 else transformers.T5EncoderModel)(config)


def autoencoder_kl(diffusers: Any, scaling_factor: float, shift_factor: float) -> Any:
    """A 2-block ``AutoencoderKL`` (factor 2, 4 latent channels) without quant convs, like SD3's and FLUX's."""
    return diffusers.AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * len(VAE_BLOCKS),
        up_block_types=("UpDecoderBlock2D",) * len(VAE_BLOCKS),
        block_out_channels=VAE_BLOCKS,
        layers_per_block=1,
        latent_channels=LATENT_CHANNELS,
        norm_num_groups=4,
        sample_size=32,
        scaling_factor=scaling_factor,
        shift_factor=shift_factor,
        use_quant_conv=False,
        use_post_quant_conv=False,
    )


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Draw weights from ``torch.manual_seed(seed)`` in float32, then restore the global RNG and dtype."""
    default_dtype = torch.get_default_dtype()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        torch.set_default_dtype(torch.float32)
        try:
            yield
        finally:
            torch.set_default_dtype(default_dtype)


def ready(modules: dict[str, Any], dtype: torch.dtype) -> dict[str, Any]:
    """Put every module in eval mode (no dropout) and cast it to ``dtype``.

    ``torch.nn.Module.to`` is called directly: diffusers' ``ModelMixin.to`` casts the same way but
    warns on every dtype cast (about fp32-only modules, of which these models have none).
    """
    for module in modules.values():
        torch.nn.Module.to(module.eval(), dtype)
    return modules


_SPECIAL = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")


def qwen_tokenizer(transformers: Any, tokenizers: Any) -> Any:
    """A byte-level BPE tokenizer with Qwen2's special tokens and no merges: one token per UTF-8 byte."""
    from tokenizers import AddedToken, decoders, models, pre_tokenizers

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {token: i for i, token in enumerate(alphabet)}
    backend = tokenizers.Tokenizer(models.BPE(vocab=vocab, merges=[], fuse_unk=False))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    backend.decoder = decoders.ByteLevel()
    backend.add_special_tokens([AddedToken(token, special=True, normalized=False) for token in _SPECIAL])
    return transformers.Qwen2TokenizerFast(
        tokenizer_object=backend, eos_token="<|im_end|>", pad_token="<|endoftext|>", unk_token=None, bos_token=None
    )


# A Qwen3 chat template reduced to what the pipelines use: turns, the generation prompt, thinking on or off
QWEN3_CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n"
    "{% if enable_thinking is defined and not enable_thinking %}<think>\n\n</think>\n\n{% endif %}{% endif %}"
)


def qwen3_text_encoder(transformers: Any, tokenizers: Any, width: int, layers: int, model: str) -> tuple[Any, Any]:
    """``(tokenizer, text_encoder)``: :func:`qwen_tokenizer` with :data:`QWEN3_CHAT_TEMPLATE`, and a Qwen3 encoder
    (``model``: ``"Qwen3ForCausalLM"`` or ``"Qwen3Model"``) of ``width`` and ``layers``, 2 heads of 8, one KV head.
    Call it under :func:`seeded` for reproducible weights."""
    tokenizer = qwen_tokenizer(transformers, tokenizers)
    tokenizer.chat_template = QWEN3_CHAT_TEMPLATE
    config = transformers.Qwen3Config(
        vocab_size=len(tokenizer),
        hidden_size=width,
        intermediate_size=2 * width,
        num_hidden_layers=layers,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=8,
        max_position_embeddings=1024,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
    )
    return tokenizer, getattr(transformers, model)(config)

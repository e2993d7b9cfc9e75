"""Tiny random-weight pipelines of every model family, built in memory from configs (no download, no files).

SD3 (and SD3.5) and FLUX.1 are built here; Qwen-Image and FLUX.2 (chat-model text encoders) in
:mod:`flowedit._tiny_qwen`, Wan 2.1 / 2.2 (video) in :mod:`flowedit._tiny_wan`; both re-exported here.

:func:`tiny_sd3_pipeline` and :func:`tiny_flux_pipeline` return *real* diffusers pipelines
(``StableDiffusion3Pipeline`` / ``FluxPipeline``) whose every component is a real class with a tiny
config: transformer, ``AutoencoderKL``, ``FlowMatchEulerDiscreteScheduler``, CLIP and T5 text
encoders and their fast tokenizers. The weights are random, so the images they make are
meaningless noise, but every code path of the real pipelines runs (prompt encoding, CLIP padding,
classifier-free guidance, FLUX latent packing and guidance embedding, dynamic shifting, VAE
shift/scale and decoding), and ``save_pretrained`` / ``from_pretrained`` round-trip them.

Shared choices (reported so tests can rely on them):

- VAE: ``block_out_channels=(8, 16)``, so ``pipe.vae_scale_factor == 2`` (the real models use 8;
  a factor other than 8 catches code that hard-codes it), ``latent_channels=4``, no quant convs
  (like the SD3 and FLUX VAEs). Image sides must be multiples of 4 for both pipelines (SD3: VAE
  factor x patch size 2; FLUX: VAE factor x 2x2 packing), e.g. ``height = width = 32``.
- Tokenizers: CLIP is a byte-level BPE with ``</w>`` word ends, CLIP's normalizer, pre-tokenizer and
  ``<|startoftext|> ... <|endoftext|>`` template (pad = unk = eos, like openai/clip-vit-large-patch14),
  ``model_max_length=77``; T5 is a Unigram model with ``▁`` word starts, ``<pad>=0, </s>=1, <unk>=2``
  and ``model_max_length=512``. Both know about 100 common lower-case English words as whole tokens
  and spell any other word with printable ASCII characters; anything else is ``unk``. Vocabularies:
  436 (CLIP) and 196 (T5) tokens.
- A reloaded pipeline (``save_pretrained`` then ``from_pretrained``) has bitwise-equal weights but
  its outputs agree only to float32 rounding (~1e-6): safetensors maps tensors at unaligned
  addresses, and CPU matmuls then round differently.

Only torch is imported at module level; diffusers, transformers and tokenizers are imported inside
the builders (the ``models`` extra).
"""

from __future__ import annotations

import collections
import contextlib
import functools
import string
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    import diffusers

__all__ = [
    "tiny_flux2_klein_pipeline",
    "tiny_flux2_pipeline",
    "tiny_flux_pipeline",
    "tiny_qwen_image_pipeline",
    "tiny_sd3_pipeline",
    "tiny_wan_pipeline",
]

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

_VAE_BLOCKS = (8, 16)  # vae_scale_factor = 2 ** (len(_VAE_BLOCKS) - 1) = 2
_LATENT_CHANNELS = 4


def _import_models() -> tuple[Any, Any, Any]:
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


def _clip_tokenizer(transformers: Any, tokenizers: Any) -> Any:
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


def _t5_tokenizer(transformers: Any, tokenizers: Any) -> Any:
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


def _clip_config(transformers: Any, tokenizer: Any, hidden: int, act: str) -> Any:
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


def _t5_encoder(transformers: Any, tokenizer: Any, d_model: int, umt5: bool = False) -> Any:
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


def _vae(diffusers: Any, scaling_factor: float, shift_factor: float) -> Any:
    """A 2-block ``AutoencoderKL`` (factor 2, 4 latent channels) without quant convs, like SD3's and FLUX's."""
    return diffusers.AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * len(_VAE_BLOCKS),
        up_block_types=("UpDecoderBlock2D",) * len(_VAE_BLOCKS),
        block_out_channels=_VAE_BLOCKS,
        layers_per_block=1,
        latent_channels=_LATENT_CHANNELS,
        norm_num_groups=4,
        sample_size=32,
        scaling_factor=scaling_factor,
        shift_factor=shift_factor,
        use_quant_conv=False,
        use_post_quant_conv=False,
    )


@contextlib.contextmanager
def _seeded(seed: int) -> Iterator[None]:
    """Draw weights from ``torch.manual_seed(seed)`` in float32, then restore the global RNG and dtype."""
    default_dtype = torch.get_default_dtype()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        torch.set_default_dtype(torch.float32)
        try:
            yield
        finally:
            torch.set_default_dtype(default_dtype)


def _ready(modules: dict[str, Any], dtype: torch.dtype) -> dict[str, Any]:
    """Put every module in eval mode (no dropout) and cast it to ``dtype``.

    ``torch.nn.Module.to`` is called directly: diffusers' ``ModelMixin.to`` casts the same way but
    warns on every dtype cast (about fp32-only modules, of which these models have none).
    """
    for module in modules.values():
        torch.nn.Module.to(module.eval(), dtype)
    return modules


def tiny_sd3_pipeline(
    seed: int = 0, dtype: torch.dtype = torch.float32, sd35: bool = False
) -> diffusers.StableDiffusion3Pipeline:
    """A real ``StableDiffusion3Pipeline`` (SD3.0 layout, or SD3.5 medium's with ``sd35=True``) with tiny random
    weights, built in memory.

    Components (weights drawn with ``torch.manual_seed(seed)`` inside ``torch.random.fork_rng``, so the
    same seed gives bitwise-identical weights and the global RNG state is left untouched):

    - ``transformer``: ``SD3Transformer2DModel``, 2 joint blocks (the last one context-pre-only, as in
      SD3), 4 heads x 8 = width 32, ``patch_size=2``, ``in/out_channels=4``, ``sample_size=32``,
      ``joint_attention_dim=128`` (T5 width), ``caption_projection_dim=32``, ``pooled_projection_dim=80``.
      With ``sd35=True``, SD3.5 medium's two additions: RMS normalisation of queries and keys
      (``qk_norm="rms_norm"``) and a dual-attention first block (``dual_attention_layers=(0,)``).
    - ``vae``: ``AutoencoderKL``, factor 2, 4 latent channels, ``scaling_factor=1.5305``,
      ``shift_factor=0.0609`` (SD3's values).
    - ``scheduler``: ``FlowMatchEulerDiscreteScheduler(shift=3.0)``.
    - ``text_encoder`` / ``text_encoder_2``: ``CLIPTextModelWithProjection``, widths 32 and 48 (like
      CLIP-L / CLIP-G, projection = width), 2 layers; pooled embeddings concatenate to 80 = 32 + 48.
    - ``text_encoder_3``: ``T5EncoderModel``, ``d_model=128``, 2 layers; the 80-wide CLIP token
      embeddings are zero-padded to 128 as in SD3 (2048 -> 4096 there).
    - ``tokenizer`` / ``tokenizer_2`` (CLIP, 77 tokens) and ``tokenizer_3`` (T5, 512): see the module doc.

    ``encode_prompt`` gives ``prompt_embeds`` of shape ``(B, 77 + max_sequence_length, 128)`` and
    ``pooled_prompt_embeds`` of shape ``(B, 80)``. Use image sides that are multiples of 4 (e.g. 32);
    the default is 64. Outputs are meaningless images (random weights); the code paths are the real ones.
    """
    diffusers, transformers, tokenizers = _import_models()
    clip_widths, t5_width = (32, 48), 128
    with _seeded(seed):
        tokenizer = _clip_tokenizer(transformers, tokenizers)
        tokenizer_2 = _clip_tokenizer(transformers, tokenizers)
        tokenizer_3 = _t5_tokenizer(transformers, tokenizers)
        modules = {
            "transformer": diffusers.SD3Transformer2DModel(
                sample_size=32,
                patch_size=2,
                in_channels=_LATENT_CHANNELS,
                num_layers=2,
                attention_head_dim=8,
                num_attention_heads=4,
                joint_attention_dim=t5_width,
                caption_projection_dim=32,  # must equal the width, heads x head dim
                pooled_projection_dim=sum(clip_widths),
                out_channels=_LATENT_CHANNELS,
                **({"qk_norm": "rms_norm", "dual_attention_layers": (0,)} if sd35 else {}),
            ),
            "vae": _vae(diffusers, scaling_factor=1.5305, shift_factor=0.0609),
            "text_encoder": transformers.CLIPTextModelWithProjection(
                _clip_config(transformers, tokenizer, clip_widths[0], "quick_gelu")
            ),
            "text_encoder_2": transformers.CLIPTextModelWithProjection(
                _clip_config(transformers, tokenizer, clip_widths[1], "gelu")
            ),
            "text_encoder_3": _t5_encoder(transformers, tokenizer_3, t5_width),
        }
    return diffusers.StableDiffusion3Pipeline(
        scheduler=diffusers.FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=3.0),
        tokenizer=tokenizer,
        tokenizer_2=tokenizer_2,
        tokenizer_3=tokenizer_3,
        **_ready(modules, dtype),
    )


def tiny_flux_pipeline(
    seed: int = 0, guidance_embeds: bool = True, dtype: torch.dtype = torch.float32
) -> diffusers.FluxPipeline:
    """A real ``FluxPipeline`` with tiny random weights, built in memory.

    ``guidance_embeds=True`` is FLUX.1-dev-like (guidance distilled: the guidance scale is an input of
    the transformer); ``False`` is FLUX.1-schnell-like (``guidance_scale`` is ignored). Weights are
    drawn with ``torch.manual_seed(seed)`` inside ``torch.random.fork_rng``: same seed -> bitwise
    identical weights, global RNG state untouched.

    - ``transformer``: ``FluxTransformer2DModel``, 1 double + 1 single block, 2 heads x 16 = width 32,
      ``axes_dims_rope=(4, 6, 6)`` (sums to the head dim), ``patch_size=1``, ``in_channels=16``
      (4 latent channels packed 2x2), ``joint_attention_dim=32`` (T5 width),
      ``pooled_projection_dim=32`` (CLIP width: FLUX uses ``CLIPTextModel``'s pooled output).
    - ``vae``: ``AutoencoderKL``, factor 2, 4 latent channels, ``scaling_factor=0.3611``,
      ``shift_factor=0.1159`` (FLUX's values).
    - ``scheduler``: ``FlowMatchEulerDiscreteScheduler`` with FLUX.1 [dev]'s dynamic shifting
      (``base_shift=0.5``, ``max_shift=1.15``, ``base_image_seq_len=256``, ``max_image_seq_len=4096``);
      schnell-like (``guidance_embeds=False``): ``shift=1``, no dynamic shifting, as FLUX.1 [schnell].
    - ``text_encoder``: ``CLIPTextModel``, width 32, 2 layers; ``text_encoder_2``: ``T5EncoderModel``,
      ``d_model=32``, 2 layers; ``tokenizer`` (CLIP, 77) and ``tokenizer_2`` (T5, 512): see the module doc.

    ``encode_prompt`` gives ``prompt_embeds`` ``(B, max_sequence_length, 32)``, ``pooled_prompt_embeds``
    ``(B, 32)`` and ``text_ids`` ``(max_sequence_length, 3)``. Image sides must be multiples of 4
    (VAE factor 2 x packing 2; e.g. 32, which gives 8 x 8 = 64 packed tokens). Outputs are meaningless
    images (random weights); the code paths are the real ones.
    """
    diffusers, transformers, tokenizers = _import_models()
    width = 32
    with _seeded(seed):
        tokenizer = _clip_tokenizer(transformers, tokenizers)
        tokenizer_2 = _t5_tokenizer(transformers, tokenizers)
        modules = {
            "transformer": diffusers.FluxTransformer2DModel(
                patch_size=1,
                in_channels=4 * _LATENT_CHANNELS,
                num_layers=1,
                num_single_layers=1,
                attention_head_dim=16,
                num_attention_heads=2,
                joint_attention_dim=width,
                pooled_projection_dim=width,
                guidance_embeds=guidance_embeds,
                axes_dims_rope=(4, 6, 6),
            ),
            "vae": _vae(diffusers, scaling_factor=0.3611, shift_factor=0.1159),
            "text_encoder": transformers.CLIPTextModel(_clip_config(transformers, tokenizer, width, "quick_gelu")),
            "text_encoder_2": _t5_encoder(transformers, tokenizer_2, width),
        }
    scheduler = diffusers.FlowMatchEulerDiscreteScheduler(  # schnell: no shift at all, as its scheduler config
        num_train_timesteps=1000,
        shift=3.0 if guidance_embeds else 1.0,
        use_dynamic_shifting=guidance_embeds,
        base_shift=0.5,
        max_shift=1.15,
        base_image_seq_len=256,
        max_image_seq_len=4096,
    )
    return diffusers.FluxPipeline(
        scheduler=scheduler, tokenizer=tokenizer, tokenizer_2=tokenizer_2, **_ready(modules, dtype)
    )


from ._tiny_qwen import tiny_flux2_klein_pipeline, tiny_flux2_pipeline, tiny_qwen_image_pipeline  # noqa: E402
from ._tiny_wan import tiny_wan_pipeline  # noqa: E402

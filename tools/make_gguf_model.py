"""Write a tiny llama-architecture GGUF model whose output is readable, repeatable text.

Nothing is downloaded: the weights are made here. Each word of a fixed list gets its own dimension of
the residual stream (a one-hot embedding); attention and feed-forward weights are tiny noise, so the
last token alone decides the next one, and the output matrix maps each word to its successor. Any
other token (bytes, the chat template, word prefixes) leads to the first word, and end-of-sequence
follows the K-th word, so an answer is `words[0] ... words[K-1]` and stops by itself; with
`ignore_eos` (or a max_tokens budget) the text goes on cycling through the list.

The tokenizer is SentencePiece-style (`tokenizer.ggml.model = "llama"`): `<unk>`, `<s>`, `</s>` at
ids 0-2, the 256 byte tokens, then every `▁`-prefix of every word, so each word is one token.

    python tools/make_gguf_model.py out.gguf                     # ~0.7 MB: width 64, 2 layers
    python tools/make_gguf_model.py big.gguf --width 512 --layers 8   # ~105 MB, a few hundred tok/s
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

_SENTENCE = (
    "the quick brown fox jumps over a lazy dog while seven bright stars slowly drift across an endless "
    "silver sky and every quiet river sings its ancient song to tall green mountains beneath warm "
    "golden light until morning finally comes home"
)
DEFAULT_WORDS: tuple[str, ...] = tuple(_SENTENCE.split())

#: logits (after the output norm) of the successor and of end-of-sequence; far above the rest (~0),
#: so any sampler settings give the same text
SUCCESSOR_LOGIT = 24.0
EOS_LOGIT = 40.0

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

UNK, BOS, EOS = 0, 1, 2
SPACE = "▁"


def vocabulary(words: Sequence[str]) -> tuple[list[str], dict[str, int]]:
    """The token list (specials, bytes, `▁`-prefixes of each word) and each word's token id."""
    tokens = ["<unk>", "<s>", "</s>", *(f"<0x{b:02X}>" for b in range(256))]
    index: dict[str, int] = {}
    for word in words:
        piece = SPACE + word
        for end in range(1, len(piece) + 1):
            prefix = piece[:end]
            if prefix not in index:
                index[prefix] = len(tokens)
                tokens.append(prefix)
    return tokens, {word: index[SPACE + word] for word in words}


def expected_answer(words: Sequence[str] = DEFAULT_WORDS, eos_after: int | None = None) -> str:
    """The text a chat answer gives when it stops by itself (llama.cpp may drop the leading space)."""
    k = len(words) if eos_after is None else eos_after
    return "".join(f" {w}" for w in words[:k])


def chain_text(count: int, words: Sequence[str] = DEFAULT_WORDS, start: int = 0) -> str:
    """`count` words of the cycle from `words[start]`: what a length-capped answer gives."""
    return "".join(f" {words[(start + i) % len(words)]}" for i in range(count))


def write_model(
    path: str | Path,
    width: int = 64,
    layers: int = 2,
    vocab_words: Sequence[str] = DEFAULT_WORDS,
    seed: int = 0,
    eos_after: int | None = None,
    context_length: int = 4096,
) -> Path:
    """Write the model to `path` and return it. `eos_after` (K, default: all words) is the number of
    words an answer has before end-of-sequence; 0 makes a model that never ends by itself."""
    import gguf  # a dev dependency: only this tool needs it

    words = list(vocab_words)
    k = len(words) if eos_after is None else eos_after
    if len(set(words)) != len(words) or not all(w and not w.isspace() and " " not in w for w in words):
        raise ValueError("vocab_words must be distinct words without spaces")
    if len(words) + 1 > width:
        raise ValueError(f"width {width} holds at most {width - 1} words (one dimension each, plus one)")
    if not 0 <= k <= len(words):
        raise ValueError(f"eos_after must be between 0 (never) and {len(words)}")
    head_dim = min(64, width // 4)
    if head_dim < 1 or width % head_dim:
        raise ValueError("width must be a multiple of 4 (and of 64 above 256)")
    heads = width // head_dim
    ffn = -(-(width * 8 // 3) // 32) * 32
    tokens, word_ids = vocabulary(words)
    vocab = len(tokens)

    # the residual dimension of each token: word i -> i, every other token -> len(words)
    other = len(words)
    dim = np.full(vocab, other, dtype=np.int64)
    for i, w in enumerate(words):
        dim[word_ids[w]] = i
    embed = np.zeros((vocab, width), dtype=np.float32)
    embed[np.arange(vocab), dim] = 1.0

    # after the RMS norm the state is ~sqrt(width) on the token's dimension: logits = output @ that
    scale = 1.0 / np.sqrt(width)
    output = np.zeros((vocab, width), dtype=np.float32)
    for i in range(len(words)):
        output[word_ids[words[(i + 1) % len(words)]], i] = SUCCESSOR_LOGIT * scale
    output[word_ids[words[0]], other] = SUCCESSOR_LOGIT * scale
    if k:
        output[EOS, k - 1] = EOS_LOGIT * scale

    rng = np.random.default_rng(seed)
    sigma = 0.05 / width**0.75  # keeps every block's contribution far below the one-hot signal

    def noise(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape) * sigma).astype(np.float32)

    ones = np.ones(width, dtype=np.float32)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("chimera-tiny")
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_context_length(context_length)
    writer.add_embedding_length(width)
    writer.add_block_count(layers)
    writer.add_feed_forward_length(ffn)
    writer.add_head_count(heads)
    writer.add_head_count_kv(heads)
    writer.add_rope_dimension_count(head_dim)
    writer.add_rope_freq_base(10000.0)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_vocab_size(vocab)
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores([0.0] * 259 + [float(len(t)) for t in tokens[259:]])
    types = [gguf.TokenType.UNKNOWN, gguf.TokenType.CONTROL, gguf.TokenType.CONTROL]
    types += [gguf.TokenType.BYTE] * 256 + [gguf.TokenType.NORMAL] * (vocab - 259)
    writer.add_token_types([int(t) for t in types])
    writer.add_bos_token_id(BOS)
    writer.add_eos_token_id(EOS)
    writer.add_unk_token_id(UNK)
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(False)
    writer.add_chat_template(CHAT_TEMPLATE)

    writer.add_tensor("token_embd.weight", embed)
    writer.add_tensor("output_norm.weight", ones)
    writer.add_tensor("output.weight", output)
    for b in range(layers):
        blk = f"blk.{b}"
        writer.add_tensor(f"{blk}.attn_norm.weight", ones)
        for name in ("attn_q", "attn_k", "attn_v", "attn_output"):
            writer.add_tensor(f"{blk}.{name}.weight", noise(width, width))
        writer.add_tensor(f"{blk}.ffn_norm.weight", ones)
        writer.add_tensor(f"{blk}.ffn_gate.weight", noise(ffn, width))
        writer.add_tensor(f"{blk}.ffn_up.weight", noise(ffn, width))
        writer.add_tensor(f"{blk}.ffn_down.weight", noise(width, ffn))

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", type=Path, help="the .gguf file to write")
    parser.add_argument("--width", type=int, default=64, help="embedding width (default 64)")
    parser.add_argument("--layers", type=int, default=2, help="transformer blocks (default 2)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the small noise weights")
    parser.add_argument(
        "--eos-after", type=int, default=None, help="words before end-of-sequence (0: never ends)"
    )
    parser.add_argument("--words", default=None, help="comma-separated word list (distinct words)")
    args = parser.parse_args(argv)
    words = tuple(args.words.split(",")) if args.words else DEFAULT_WORDS
    try:
        path = write_model(args.path, args.width, args.layers, words, args.seed, args.eos_after)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{path} ({path.stat().st_size / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

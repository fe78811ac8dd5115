"""Gemma 3's tokenizer (rebuilt from the GGUF vocabulary) against two independent references, and the
shared tokenizer interface.

References: transformers' tokenizer built from the same GGUF (``AutoTokenizer.from_pretrained(folder,
gguf_file=...)``) and llama.cpp's own SentencePiece tokenizer (``llama_cpp.Llama(vocab_only=True)``).
"""

import warnings

import pytest

from helpers.tokenizers import GemmaTokenizer, Tokenizer, get_tokenizer
from helpers.weights import gemma3_gguf_path

MULTILINGUAL = (
    "Grüße aus Köln, ça va? Straße, naïve façade. Привет, мир! Как дела? 日本語のテキストと中文文本。"
    " 한국어 문장입니다. مرحبا بالعالم. हिन्दी पाठ। Ελληνικά κείμενα. ¿Qué tal? Emoji 🤖🚀 and 👩‍👩‍👧 family."
)
CODE = (
    "def fibonacci(n: int) -> int:\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n    if n < 2:\n"
    "        return n\n    return fibonacci(n - 1) + fibonacci(n - 2)\n\n\nif __name__ == '__main__':\n"
    "\tprint({k: v for k, v in zip('abc', [1, 2, 3])})  # {'a': 1, ...}\n"
    "SELECT name, COUNT(*) FROM users WHERE age >= 18 GROUP BY name;\n"
    "x = 0xFF & ~mask; y = 3.14159e-10; z = \"https://example.com/a?b=1&c=2#d\""
)
WHITESPACE = (
    "  two leading spaces\n\n\nthree newlines   three spaces    four\t\ttabs \t mixed \n \n"
    "        eight-space indent\r\nwindows line\u00a0no-break\u200bzero-width\u3000ideographic space   "
)
SPECIAL = ("<start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\nHello<eos> and "
           "<table><tr><td>1</td></tr></table>")
ALPACA = (
    "Below is an instruction that describes a task. Write a response that appropriately completes the "
    "request.\n\n### Instruction:\nRewrite the sentence in passive voice.\n\n### Input:\nThe cat chased the "
    "mouse.\n\n### Response:\nThe mouse was chased by the cat."
)
TEXTS = {"multilingual": MULTILINGUAL, "code": CODE, "whitespace": WHITESPACE, "special": SPECIAL,
         "alpaca": ALPACA, "empty": "", "single space": " ",
         "bytes": "\x00\x07 control \U0001d54f\U0001f9ec rare"}


@pytest.fixture(scope="module")
def gemma():
    return get_tokenizer("gemma3")


@pytest.fixture(scope="module")
def transformers_reference():
    transformers = pytest.importorskip("transformers",
                                       reason="needs the reference extra: pip install -e '.[reference]'")
    path = gemma3_gguf_path()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return transformers.AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)


@pytest.fixture(scope="module")
def llama_cpp_reference():
    llama_cpp = pytest.importorskip("llama_cpp", reason="needs the judge extra: pip install -e '.[judge]'")
    return llama_cpp.Llama(str(gemma3_gguf_path()), vocab_only=True, verbose=False)


@pytest.mark.parametrize("name", list(TEXTS))
def test_ids_equal_transformers(gemma, transformers_reference, name):
    text = TEXTS[name]
    assert gemma.encode(text) == transformers_reference(text, add_special_tokens=False).input_ids


@pytest.mark.parametrize("name", list(TEXTS))
def test_ids_equal_llama_cpp(gemma, llama_cpp_reference, name):
    text = TEXTS[name]
    assert gemma.encode(text) == llama_cpp_reference.tokenize(text.encode("utf-8"),
                                                              add_bos=False, special=True)


def test_long_space_runs_are_matched_longest_first(gemma, llama_cpp_reference):
    """Runs of spaces are user-defined pieces of up to 31 spaces (ids 138..167), which SentencePiece matches
    longest-first: 40 spaces = 31 + 9. llama.cpp agrees; transformers 5.24's GGUF tokenizer builds these runs
    with BPE merges instead and splits runs longer than 31 differently (e.g. 16 + 16 + 8), so this case is
    checked against llama.cpp only. On 4,064 texts (the course data, the book's file, this repository's code,
    random Unicode) the course tokenizer equals llama.cpp on all and transformers on all but 14 such runs."""
    text = "x" + " " * 40 + "y"
    ids = gemma.encode(text)
    assert ids[1:3] == [167, 145] and gemma.decode(ids) == text
    assert ids == llama_cpp_reference.tokenize(text.encode("utf-8"), add_bos=False, special=True)


def test_texts_are_not_trivial(gemma):
    """The test texts reach the parts that can go wrong: byte fallback, space runs, newline runs, control
    tokens."""
    ids = gemma.encode(" ".join(TEXTS.values()))
    assert any(238 <= i < 238 + 256 for i in ids)  # <0x..> byte pieces
    assert any(138 <= i <= 167 for i in ids)  # runs of spaces (user-defined pieces)
    assert 108 in ids and 106 in ids and 105 in ids  # "\n\n", <end_of_turn>, <start_of_turn>
    assert len(ids) > 300


def test_special_ids_come_from_the_gguf(gemma):
    # tokenizer.ggml.{bos,eos,padding}_token_id
    assert (gemma.bos_id, gemma.eos_id, gemma.pad_id) == (2, 1, 0)
    assert ((gemma.eos_text, gemma.bos_text, gemma.name, gemma.vocab_size)
            == ("<eos>", "<bos>", "gemma3", 262_144))


def test_encode_adds_no_bos_and_control_text_becomes_one_id(gemma):
    assert gemma.encode("Hello world") == [9259, 1902]
    assert gemma.encode("Hi<end_of_turn>") == gemma.encode("Hi") + [106]
    assert gemma.encode(gemma.eos_text) == [gemma.eos_id]


@pytest.mark.parametrize("name", list(TEXTS))
def test_decode_inverts_encode(gemma, name):
    assert gemma.decode(gemma.encode(TEXTS[name])) == TEXTS[name]


@pytest.mark.parametrize("name", ["gpt2", "gemma3"])
def test_both_tokenizers_share_the_interface(name):
    tok = get_tokenizer(name)
    assert isinstance(tok, Tokenizer)
    assert tok.decode(tok.encode("Every effort moves you")) == "Every effort moves you"
    assert tok.encode(tok.eos_text) == [tok.eos_id]
    assert 0 <= tok.pad_id < tok.vocab_size and 0 <= tok.eos_id < tok.vocab_size
    assert get_tokenizer(name) is tok  # built once per process


def test_gemma_tokenizer_is_cached_as_json(gemma):
    from helpers.config import cache_dir

    assert isinstance(gemma, GemmaTokenizer)
    assert list(cache_dir("converted").glob("gemma3-tokenizer.*.json"))


def test_unknown_tokenizer_name():
    with pytest.raises(KeyError, match="gemma3"):
        get_tokenizer("llama")

"""The drafts a notebook grows for teaching must end where the helpers are (COURSE_DESIGN.md §4.1).

Notebook 01 builds the Alpaca template (``format_prompt_draft`` -> ``format_alpaca_draft``), notebook 02 the
collate function (``collate_draft_1`` -> ``_2`` -> ``_3``). We read the notebooks with nbformat, run only the
drafts' definitions (plus UPPER_CASE constants they use, such as ``PREAMBLE``), and compare them with
``helpers.data`` and ``helpers.batching`` on toy inputs and on the real data.
"""

import ast

import nbformat
import pytest
import torch

from helpers.batching import collate
from helpers.config import DATA_DIR, REPO_ROOT
from helpers.data import format_example, format_prompt, load_records

NOTEBOOKS = REPO_ROOT / "notebooks"
NB01 = NOTEBOOKS / "01_format-the-instruction-data.ipynb"
NB02 = NOTEBOOKS / "02_batch-and-mask.ipynb"
BOOK_DATA = REPO_ROOT.parent / "shared" / "data" / "instruction-data.json"

TOY_BATCH = [[0, 1, 2, 3, 4], [5, 6], [7, 8, 9]]
GPT2_EOS = 50256  # GPT-2's end-of-text id; the toy drafts pad with it, as notebook 02 explains


def notebook_definitions(path, names):
    """Execute the top-level ``def``s called ``names`` (and UPPER_CASE constants) from ``path``'s code
    cells."""
    nodes = []
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type != "code":
            continue
        for node in ast.parse(cell.source).body:
            if isinstance(node, ast.FunctionDef) and node.name in names:
                nodes.append(node)
            elif isinstance(node, ast.Assign) and all(
                isinstance(t, ast.Name) and t.id.isupper() and not t.id.startswith("N_") for t in node.targets
            ) and not any(isinstance(n, ast.Call) for n in ast.walk(node)):
                nodes.append(node)  # a plain constant such as PREAMBLE = ("..." "...")
    namespace = {"torch": torch}
    exec(compile(ast.Module(body=nodes, type_ignores=[]), str(path), "exec"), namespace)
    missing = [name for name in names if name not in namespace]
    assert not missing, f"{path.name} no longer defines {missing}; update the notebook or this test"
    return namespace


# ------------------------------------------------------------------------------------------------ 01


TOY_RECORDS = [
    {"instruction": "Rewrite the sentence in the passive voice.", "input": "The cat chased the mouse.",
     "output": "The mouse was chased by the cat."},
    {"instruction": "Name the capital of Japan.", "input": "", "output": "The capital of Japan is Tokyo."},
    {"instruction": "Sort the words.", "input": "pear, apple\nfig", "output": "apple, fig, pear"},
]


@pytest.fixture(scope="module")
def alpaca_drafts():
    return notebook_definitions(NB01, ["format_prompt_draft", "format_alpaca_draft"])


@pytest.mark.parametrize("record", TOY_RECORDS, ids=["with-input", "no-input", "multiline-input"])
def test_alpaca_drafts_equal_helpers_on_toy_records(alpaca_drafts, record):
    assert alpaca_drafts["format_prompt_draft"](record) == format_prompt(record, style="alpaca")
    assert alpaca_drafts["format_alpaca_draft"](record) == format_example(record, style="alpaca")


def test_alpaca_drafts_are_not_trivially_equal(alpaca_drafts):
    """The input section must come and go with the input: the two toy records differ in exactly that."""
    with_input, without = (alpaca_drafts["format_alpaca_draft"](r) for r in TOY_RECORDS[:2])
    assert "### Input:" in with_input and "### Input:" not in without
    assert without.endswith("### Response:\nThe capital of Japan is Tokyo.")


@pytest.mark.parametrize("path", [DATA_DIR / "course-instructions.json", BOOK_DATA], ids=["course", "book"])
def test_alpaca_draft_equals_helper_on_every_record(alpaca_drafts, path):
    if not path.is_file():
        pytest.skip(f"{path} not present")
    records = load_records(path)
    draft = alpaca_drafts["format_alpaca_draft"]
    different = [i for i, r in enumerate(records) if draft(r) != format_example(r, style="alpaca")]
    assert not different, f"{path.name}: draft and helper differ on records {different[:10]}"


# ------------------------------------------------------------------------------------------------ 02


@pytest.fixture(scope="module")
def collate_drafts():
    return notebook_definitions(NB02, ["collate_draft_1", "collate_draft_2", "collate_draft_3"])


def test_collate_draft_3_matches_the_book_on_the_toy_batch(collate_drafts):
    inputs, targets = collate_drafts["collate_draft_3"](TOY_BATCH)
    pad = GPT2_EOS
    assert inputs.tolist() == [[0, 1, 2, 3, 4], [5, 6, pad, pad, pad], [7, 8, 9, pad, pad]]
    assert targets.tolist() == [[1, 2, 3, 4, pad], [6, pad, -100, -100, -100], [8, 9, pad, -100, -100]]


@pytest.mark.parametrize("allowed_max_length", [None, 1, 3, 5, 50])
def test_collate_draft_3_equals_helpers_collate(collate_drafts, allowed_max_length):
    draft_inputs, draft_targets = collate_drafts["collate_draft_3"](TOY_BATCH,
                                                                    allowed_max_length=allowed_max_length)
    inputs, targets = collate(TOY_BATCH, pad_id=GPT2_EOS, eos_id=GPT2_EOS,
                              allowed_max_length=allowed_max_length)
    assert torch.equal(draft_inputs, inputs) and torch.equal(draft_targets, targets)


def test_collate_draft_3_equals_helpers_when_pad_differs_from_eos(collate_drafts):
    """Gemma-like tokenizers pad with an id other than end-of-text; only the first eos target is kept."""
    batch = [[11, 12, 13], [14], [15, 16, 17, 18]]
    draft_inputs, draft_targets = collate_drafts["collate_draft_3"](batch, pad_id=0, eos_id=1)
    inputs, targets = collate(batch, pad_id=0, eos_id=1)
    assert torch.equal(draft_inputs, inputs) and torch.equal(draft_targets, targets)
    assert (targets == 1).sum(dim=1).tolist() == [1, 1, 1]  # exactly one end-of-text target per row


def test_earlier_drafts_grow_into_the_last(collate_drafts):
    padded = collate_drafts["collate_draft_1"](TOY_BATCH)
    inputs_2, targets_2 = collate_drafts["collate_draft_2"](TOY_BATCH)
    inputs_3, targets_3 = collate_drafts["collate_draft_3"](TOY_BATCH)
    assert torch.equal(padded, inputs_2) and torch.equal(inputs_2, inputs_3)
    assert torch.equal(targets_2[:, :-1], inputs_2[:, 1:])  # targets are the inputs shifted by one
    kept = targets_3 != -100
    assert torch.equal(targets_3[kept], targets_2[kept]) and (~kept).sum() == 5


# ------------------------------------------------------------------------------------------------ 05


NB05 = NOTEBOOKS / "05_review-the-responses.ipynb"
# the record notebook 05 shows the prompt for
JUDGE_EXAMPLE = {"instruction": "What is the capital of Australia?", "input": "",
                 "output": "The capital of Australia is Canberra."}


def _notebook_05_score_one():
    """Run the cell of notebook 05 that defines ``score_one``: its imports and the function, nothing else."""
    for cell in nbformat.read(NB05, as_version=4).cells:
        if cell.cell_type != "code":
            continue
        body = ast.parse(cell.source).body
        if any(isinstance(n, ast.FunctionDef) and n.name == "score_one" for n in body):
            keep = [n for n in body if isinstance(n, (ast.Import, ast.ImportFrom))
                    or (isinstance(n, ast.FunctionDef) and n.name == "score_one")]
            namespace = {}
            exec(compile(ast.Module(body=keep, type_ignores=[]), str(NB05), "exec"), namespace)
            return namespace["score_one"]
    raise AssertionError(f"{NB05.name} no longer defines score_one; update the notebook or this test")


def test_notebook_05_shows_the_judge_prompt_helpers_send():
    """The messages written out in notebook 05's markdown are exactly what PROMPTS["yes-no"] (the default)
    sends."""
    import re

    from helpers.judge import PROMPTS, Judge

    assert Judge.__init__.__kwdefaults__["prompt"] == "yes-no"
    shown = [c.source for c in nbformat.read(NB05, as_version=4).cells
             if c.cell_type == "markdown" and "two messages the judge gets" in c.source]
    assert len(shown) == 1, "notebook 05 should write the judge's two messages out in one markdown cell"
    blocks = re.findall(r"```text\n(.*?)\n```", shown[0], flags=re.DOTALL)
    system, user = PROMPTS["yes-no"].messages(JUDGE_EXAMPLE, "Sydney.")
    assert blocks == [system["content"], user["content"]]
    assert "<response>\nSydney.\n</response>" in blocks[1]


@pytest.fixture(scope="module")
def embedded_judge():
    """One embedded judge (llama.cpp on 127.0.0.1) for the module, as tests/test_judge.py shares its
    server."""
    from helpers.judge import Judge

    with Judge("embedded") as judge:
        yield judge


def test_notebook_05_score_one_equals_judge_score(embedded_judge):
    """Notebook 05's one judge call gives Judge.score's number: 100 * P(yes), renormalised over yes / no."""
    from helpers.judge import load_calibration

    score_one = _notebook_05_score_one()
    calibration = load_calibration()["records"]
    cases = [(calibration[0], "correct"), (calibration[1], "wrong"), (calibration[2], "partly")]
    mine, helper = [], []
    for record, kind in cases:
        response = record["responses"][kind]
        mine.append(score_one(embedded_judge.client, record, response, model=embedded_judge.model))
        result = embedded_judge.score(record, response)
        assert (result["status"] == "ok" and not result["injection_suspected"]
                and result["weighted_score"] is not None)
        helper.append(result["score"])
    assert mine == helper, f"notebook {mine} != helpers {helper}"
    assert len(set(mine)) > 1, "three different answers should not all get the same score"


# ------------------------------------------------------------------------------------------------ 04


NB04 = NOTEBOOKS / "04_finetune-and-watch-the-loss.ipynb"


def _notebook_04(names):
    """The top-level ``def``s called ``names`` from notebook 04's code cells, with what they use in scope."""
    import torch.nn.functional as F

    from helpers.training import IGNORE_INDEX, evaluate

    nodes = [node for cell in nbformat.read(NB04, as_version=4).cells if cell.cell_type == "code"
             for node in ast.parse(cell.source).body
             if isinstance(node, ast.FunctionDef) and node.name in names]
    namespace = {"torch": torch, "F": F, "IGNORE_INDEX": IGNORE_INDEX, "evaluate": evaluate}
    exec(compile(ast.Module(body=nodes, type_ignores=[]), str(NB04), "exec"), namespace)
    missing = [name for name in names if name not in namespace]
    assert not missing, f"{NB04.name} no longer defines {missing}; update the notebook or this test"
    return namespace


def _tiny_04(seed=1):
    """The tiny random GPT (dropout 0) and plain, unshuffled loaders over course records (real GPT-2
    tokenizer)."""
    from functools import partial
    from types import SimpleNamespace

    from torch.utils.data import DataLoader

    from helpers.batching import InstructionDataset
    from helpers.config import set_seed
    from helpers.models import TINY_GPT_CONFIG, GPTModel
    from helpers.tokenizers import get_tokenizer

    tokenizer = get_tokenizer("gpt2")
    records = load_records(DATA_DIR / "course-instructions.json")
    batches = partial(collate, pad_id=tokenizer.pad_id, eos_id=tokenizer.eos_id, allowed_max_length=96,
                      mask_instructions=True)
    def loader(rs):
        return DataLoader(InstructionDataset(rs, tokenizer), batch_size=2, shuffle=False, collate_fn=batches)
    set_seed(seed)
    return GPTModel(TINY_GPT_CONFIG), SimpleNamespace(train=loader(records[:8]), val=loader(records[8:12]))


def test_notebook_04_losses_equal_the_helpers():
    from helpers import training

    nb = _notebook_04(["full_logits_loss", "supervised_loss"])
    model, loaders = _tiny_04()
    inputs, targets = next(iter(loaders.train))
    assert (targets == -100).any() and (targets != -100).any()  # masking leaves some targets out
    values = [f(model, inputs, targets).item() for f in (nb["full_logits_loss"], nb["supervised_loss"],
                                                         training.full_logits_loss, training.supervised_loss)]
    assert values == pytest.approx([values[0]] * 4, abs=1e-5), values
    unmasked = torch.nn.functional.cross_entropy(model(inputs).flatten(0, 1), inputs.flatten())
    assert abs(unmasked.item() - values[0]) > 1e-3  # the mask matters: ignoring it gives another number


def test_notebook_04_train_simple_equals_train():
    """Same seed, constant lr, no warmup, grad_accum 1, batches in order: the same losses, step by step."""
    from helpers.training import FinetuneSettings, fixed_batches, train

    nb = _notebook_04(["supervised_loss", "train_simple"])
    knobs = dict(lr=3e-3, weight_decay=0.1, grad_clip=1.0, eval_every=2)
    model, loaders = _tiny_04()
    step_losses, evals = nb["train_simple"](model, loaders.train, fixed_batches(loaders.val, None),
                                            steps=8, **knobs)

    model, loaders = _tiny_04()
    settings = FinetuneSettings(model="tiny-gpt", epochs=2, max_steps=8, warmup_steps=0, cosine=False,
                                grad_accum=1, patience=None, freeze_embeddings=False,
                                train_last_n_blocks=None, **knobs)
    seen = []
    history = train(model, loaders, settings, progress=False, on_step=lambda step, loss: seen.append(loss))
    assert len(step_losses) == len(seen) == 8  # 2 epochs of 4 batches
    assert step_losses == pytest.approx(seen, rel=1e-5)
    assert [s for s, _ in evals] == [r["step"] for r in history.rows] == [0, 2, 4, 6, 8]
    assert [v for _, v in evals] == pytest.approx([r["val_loss"] for r in history.rows], rel=1e-5)
    assert evals[-1][1] < evals[0][1] - 0.5  # it learned something: the comparison is not of two idle runs


def test_notebook_04_bootstrap_se_equals_the_helpers():
    from helpers import training

    nb = _notebook_04(["bootstrap_se"])
    model, loaders = _tiny_04()
    sums, counts = training.record_losses(model, list(loaders.val) + list(loaders.train))
    assert len(sums) == 12 and (counts > 0).all()
    assert nb["bootstrap_se"](sums, counts) == training.bootstrap_se(sums, counts) > 0
    counts[3] = 0  # a record truncation left without targets: both leave it out
    sums[3] = 0.0
    assert (nb["bootstrap_se"](sums, counts, n_resamples=200, seed=5)
            == training.bootstrap_se(sums, counts, 200, 5))


# ------------------------------------------------------------------------------------------------ 02 and 03:
# the data set class of notebook 02 and the generation loop of notebook 03, against their production twins


NB03 = NOTEBOOKS / "03_load-a-pretrained-model.ipynb"
NEWLINE_ANSWER = {"instruction": "Name the capital of Japan.", "input": "", "output": "\nTokyo."}  # see below


def notebook_definitions_and_imports(path, names):
    """The top-level ``def``s / ``class``es called ``names`` from ``path``, run after the notebook's imports.

    Every import statement of the notebook runs (so the definitions see what the lesson imported), except
    imports of the names themselves: notebook 02 imports the helper ``InstructionDataset`` over its own class.
    """
    imports, definitions = [], []
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type != "code":
            continue
        for node in ast.parse(cell.source).body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                node.names = [a for a in node.names if (a.asname or a.name.split(".")[0]) not in names]
                imports += [node] if node.names else []
            elif isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name in names:
                definitions.append(node)
    namespace = {}
    exec(compile(ast.Module(body=imports + definitions, type_ignores=[]), str(path), "exec"), namespace)
    missing = [name for name in names if name not in namespace]
    assert not missing, f"{path.name} no longer defines {missing}; update the notebook or this test"
    return namespace


@pytest.fixture(scope="module")
def course_tokenizers():
    from helpers.registry import load_tokenizer

    return {"gpt2": load_tokenizer("tiny-gpt"), "gemma3": load_tokenizer("gemma-3-270m")}


@pytest.mark.parametrize("style", ["alpaca", "phi3"])
@pytest.mark.parametrize("tokenizer_name", ["gpt2", "gemma3"])
def test_notebook_02_instruction_dataset_equals_helper(course_tokenizers, tokenizer_name, style):
    """Same examples as helpers.batching.InstructionDataset: ids, prompt length, <bos> when the tokenizer has
    one.

    The course's records split at the prompt/response boundary whether tokenized apart or together, so a
    record whose answer starts with a line break is added: Gemma's tokenizer merges it with the prompt's last
    newline into one token when the text is tokenized whole, which a class that did so would get wrong.
    """
    from helpers.batching import InstructionDataset

    notebook_class = notebook_definitions_and_imports(NB02, ["InstructionDataset"])["InstructionDataset"]
    assert notebook_class is not InstructionDataset
    tok = course_tokenizers[tokenizer_name]
    records = load_records(DATA_DIR / "course-instructions.json")[:300] + [NEWLINE_ANSWER]
    ours, helper = notebook_class(records, tok, style=style), InstructionDataset(records, tok, style=style)
    assert len(ours) == len(helper) == len(records)
    different = [i for i in range(len(records)) if ours[i] != helper[i]]
    assert not different, (
        f"notebook 02's InstructionDataset differs from the helper on records {different[:10]}")
    first = ours[0]
    start = [] if getattr(tok, "bos_id", None) is None else [tok.bos_id]
    assert (first["token_ids"][: first["prompt_length"]]
            == start + tok.encode(format_prompt(records[0], style=style)))


class _EndsAt:
    """A tokenizer whose end-of-text is another token, so that a model "finishes" where we choose."""

    def __init__(self, tokenizer, eos_id):
        self._tokenizer, self.eos_id = tokenizer, eos_id

    def __getattr__(self, name):
        return getattr(self._tokenizer, name)


@pytest.fixture(scope="module")
def generate_simple():
    return notebook_definitions_and_imports(NB03, ["generate_simple"])["generate_simple"]


@pytest.fixture(scope="module", params=["tiny-gpt", "gemma-3-270m"])
def course_model(request):
    from helpers.registry import load_model

    return load_model(request.param, device="cpu")


def test_notebook_03_generate_simple_equals_generate(generate_simple, course_model):
    """Greedy, no cache, logits at the last position: the same tokens and text as the KV-cache generate."""
    from helpers.generation import generate

    model, tok = course_model
    prompts = [format_prompt(record) for record in TOY_RECORDS]
    texts, ids = generate(model, tok, prompts, max_new_tokens=4, return_ids=True)
    for prompt, text, expected in zip(prompts, texts, ids):
        simple = generate_simple(model, tok, prompt, max_new_tokens=4)
        assert simple == expected and tok.decode(simple) == text, f"{model.family}: {prompt!r}"
    assert len(set(map(tuple, ids))) > 1, "three different prompts should not all get the same answer"


def test_notebook_03_generate_simple_stops_at_end_of_text(generate_simple):
    """Pretend the fourth token the model writes is end-of-text: both loops stop right before its first
    use."""
    from helpers.generation import generate
    from helpers.registry import load_model

    model, tok = load_model("tiny-gpt", device="cpu")  # what stops the loop does not depend on the model
    prompt = format_prompt(TOY_RECORDS[1])
    free = generate_simple(model, tok, prompt, max_new_tokens=6)
    assert len(free) == 6  # no end-of-text of its own within 6 tokens, so the stop below is ours
    ends = _EndsAt(tok, eos_id=free[3])
    stopped = generate_simple(model, ends, prompt, max_new_tokens=6)
    _, (expected,) = generate(model, ends, [prompt], max_new_tokens=6, return_ids=True)
    assert stopped == free[: free.index(free[3])] == expected


# ------------------------------------------------------------------------------------------------ 07


CONVERSATIONS = [
    [],
    [{"role": "user", "content": "Give me a synonym of 'happy'."},
     {"role": "assistant", "content": "A synonym of 'happy' is 'joyful'."}],
    [{"role": "user", "content": "Hi."}, {"role": "assistant", "content": "Hello!"},
     {"role": "user", "content": "Spell cat."}, {"role": "assistant", "content": "C-A-T."}],
]


@pytest.mark.parametrize("style", ["alpaca", "phi3"])
@pytest.mark.parametrize("history", CONVERSATIONS, ids=["one turn", "two turns", "three turns"])
def test_notebook_07_build_prompt_equals_conversation_prompt(style, history):
    from helpers.chat import conversation_prompt

    build_prompt = notebook_definitions_and_imports(NOTEBOOKS / "07_chat-and-export.ipynb",
                                                    ["build_prompt"])["build_prompt"]
    assert (build_prompt("And an antonym?", history, style)
            == conversation_prompt("And an antonym?", history, style))


# ------------------------------------------------------------------------------------------------ 08


@pytest.mark.parametrize("rank,alpha,shape", [(8, 16, (640, 1024)), (1, 4, (32, 48)), (4, 4, (24, 8))])
def test_notebook_08_lora_linear_equals_helpers(rank, alpha, shape):
    from torch import nn

    from helpers.lora import LoRALinear

    drafted = notebook_definitions_and_imports(NOTEBOOKS / "08_adapt-with-lora.ipynb",
                                               ["LoRALinear"])["LoRALinear"]
    torch.manual_seed(0)
    mine = drafted(nn.Linear(*shape), rank=rank, alpha=alpha)
    theirs = LoRALinear(nn.Linear(*shape), rank=rank, alpha=alpha)
    assert set(mine.state_dict()) == set(theirs.state_dict())  # the same parameters under the same names
    theirs.load_state_dict(mine.state_dict())
    x = torch.randn(3, 5, shape[0])  # (B, T, in)
    assert torch.equal(mine(x), mine.base(x))  # B = 0: the base layer, exactly
    assert torch.allclose(mine(x), theirs(x), atol=1e-6)
    with torch.no_grad():
        mine.lora_B.normal_(0, 0.1)
        theirs.lora_B.copy_(mine.lora_B)
    unmerged = mine(x)
    assert torch.allclose(theirs(x), unmerged, atol=1e-6) and not torch.allclose(unmerged, mine.base(x))
    mine.merge(), theirs.merge()
    assert torch.allclose(mine.base.weight, theirs.base.weight, atol=1e-6)
    assert torch.allclose(mine(x), unmerged, atol=1e-5) and torch.allclose(theirs(x), unmerged, atol=1e-5)
    mine.unmerge(), theirs.unmerge()
    assert torch.allclose(mine(x), unmerged, atol=1e-5)
    assert [n for n, p in mine.named_parameters() if p.requires_grad] == ["lora_A", "lora_B"]


# ------------------------------------------------------------------------------------------------ 09


def test_notebook_09_logprobs_and_dpo_loss_equal_helpers():
    from helpers.config import set_seed
    from helpers.dpo import dpo_loss, pair_batches, sequence_logprobs
    from helpers.models import TINY_GPT_CONFIG, GPTModel
    from helpers.tokenizers import get_tokenizer

    drafted = notebook_definitions_and_imports(NOTEBOOKS / "09_prefer-answers-with-dpo.ipynb",
                                               ["sequence_logprobs", "dpo_loss"])
    set_seed(3)
    model = GPTModel(TINY_GPT_CONFIG).eval()
    pairs = [{"instruction": "Give the plural of cat.", "input": "", "chosen": "cats", "rejected": "cat"},
             {"instruction": "Add the numbers.", "input": "2 and 3", "chosen": "5",
              "rejected": "The sum is 6."}]
    inputs, targets = pair_batches(pairs, get_tokenizer("gpt2"), batch_size=2)[0]  # (4, T), prompts masked
    with torch.no_grad():
        mine = drafted["sequence_logprobs"](model, inputs, targets)
        theirs = sequence_logprobs(model, inputs, targets)
    assert torch.allclose(mine, theirs, atol=1e-4) and (mine < 0).all()
    reference = theirs + torch.tensor([0.3, -0.2, 0.5, -1.0])  # a reference that differs from the policy
    for beta in (0.1, 1.0):
        expected, _ = dpo_loss(theirs[:2], theirs[2:], reference[:2], reference[2:], beta)
        got = drafted["dpo_loss"](mine[:2], mine[2:], reference[:2], reference[2:], beta)
        assert torch.allclose(got, expected, atol=1e-5) and abs(got.item() - 0.6931) > 0.01

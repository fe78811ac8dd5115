"""Multi-turn prompts, chat() and the chat box (notebook 07)."""

import json

import pytest

from helpers.chat import ChatBox, chat, conversation_prompt, conversation_record
from helpers.data import format_prompt
from helpers.generation import generate
from helpers.registry import load_model
from helpers.review import STYLE_STOPS

RECORDS = [{"instruction": "Name three primary colors.", "input": ""},
           {"instruction": "Convert to meters.", "input": "500 centimeters"}]
HISTORY = [{"role": "user", "content": "Hi."}, {"role": "assistant", "content": "Hello! How can I help?"},
           {"role": "user", "content": "Spell cat."}, {"role": "assistant", "content": "C-A-T."}]


@pytest.fixture(scope="module")
def tiny():
    return load_model("tiny-gpt")


@pytest.mark.parametrize("style", ["alpaca", "phi3"])
@pytest.mark.parametrize("record", RECORDS)
def test_one_turn_is_the_training_prompt(style, record):
    assert (conversation_prompt(record["instruction"], (), style, record["input"])
            == format_prompt(record, style))


def test_alpaca_folds_earlier_turns_into_the_input():
    record = conversation_record("And dog?", HISTORY)
    assert record["instruction"] == "And dog?"
    assert record["input"] == ("Earlier in this conversation:\nUser: Hi.\nAssistant: Hello! How can I help?\n"
                               "User: Spell cat.\nAssistant: C-A-T.")
    assert conversation_prompt("And dog?", HISTORY, "alpaca") == format_prompt(record, "alpaca")


def test_phi3_writes_earlier_turns_as_turns():
    prompt = conversation_prompt("And dog?", HISTORY, "phi3")
    assert prompt == ("<|user|>\nHi.\n\n<|assistant|>\nHello! How can I help?<|end|>\n"
                      "<|user|>\nSpell cat.\n\n<|assistant|>\nC-A-T.<|end|>\n"
                      "<|user|>\nAnd dog?\n\n<|assistant|>\n")


@pytest.mark.parametrize("history, needle", [
    ([{"role": "assistant", "content": "x"}], "alternate"),
    ([{"role": "user", "content": "x"}], "no answer"),
    ([{"role": "system", "content": "x"}], "role"),
    ([{"role": "user", "content": 3}], "content"),
])
def test_bad_history_is_refused(history, needle):
    with pytest.raises(ValueError, match=needle):
        conversation_prompt("next", history)


def test_chat_streams_the_same_reply_it_returns(tiny):
    model, tokenizer = tiny
    pieces = []
    reply, history = chat(model, tokenizer, "Name a color.", max_new_tokens=12, stream=pieces.append)
    expected = generate(model, tokenizer, [format_prompt({"instruction": "Name a color."})],
                        max_new_tokens=12, stop=STYLE_STOPS["alpaca"] + ["<|end|>"])[0].strip()
    assert reply == expected and "".join(pieces).strip() == reply and len(pieces) > 1
    assert history == [{"role": "user", "content": "Name a color."}, {"role": "assistant", "content": reply}]
    again, longer = chat(model, tokenizer, "Another?", history=history, max_new_tokens=5)
    assert len(longer) == 4 and longer[:2] == history and longer[3]["content"] == again
    with pytest.raises(ValueError, match="empty"):
        chat(model, tokenizer, "   ")


def test_chat_box_saves_every_exchange_and_resumes(tiny, tmp_path):
    pytest.importorskip("ipywidgets")
    model, tokenizer = tiny
    path = tmp_path / "chat.json"
    box = ChatBox(model, tokenizer, style="phi3", path=path, max_new_tokens=6)
    reply = box.send("Hello there")
    saved = json.loads(path.read_text())
    assert saved["style"] == "phi3" and saved["messages"][-1] == {"role": "assistant", "content": reply}
    assert "Hello there" in box.log.value and box.text.value == "" and not box.send_button.disabled
    assert box.send("  ") == "" and len(box.history) == 2  # nothing typed: nothing sent
    resumed = ChatBox(model, tokenizer, style="phi3", path=path)
    assert resumed.history == box.history
    resumed.clear()
    assert json.loads(path.read_text())["messages"] == [] and "No messages" in resumed.log.value
    path.write_text(json.dumps({"messages": [{"role": "assistant", "content": "orphan"}]}))
    with pytest.raises(ValueError, match="alternate"):
        ChatBox(model, tokenizer, path=path)


def test_chat_box_gives_the_text_back_when_answering_fails(tiny, tmp_path):
    pytest.importorskip("ipywidgets")
    model, tokenizer = tiny
    box = ChatBox(model, tokenizer, path=tmp_path / "chat.json", max_new_tokens=100_000)  # beyond the context
    with pytest.raises(ValueError, match="max_new_tokens"):
        box.send("Keep this text")
    assert box.text.value == "Keep this text" and box.history == [] and "error" in box.status.value
    assert not box.send_button.disabled and not box.text.disabled
    box.max_new_tokens = 4
    box.send("Hello")
    assert box.status.value.startswith("1 exchange,") and box.log.layout.overflow == "auto"

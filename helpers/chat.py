"""Talk to a model in its prompt style: multi-turn prompts, streaming answers, a chat box (notebook 07).

    from helpers.chat import chat, conversation_prompt, ChatBox
    reply, history = chat(model, tokenizer, "Name three primary colors.", style="alpaca")
    reply, history = chat(model, tokenizer, "And three secondary ones?", history=history, style="alpaca")
    # a text field, send, streaming answer, clear, saved as JSON:
    ChatBox(model, tokenizer, style="alpaca").show()

The course's data has one turn per record, so a conversation must be written in a form the model has
seen. **Phi-3** has turns: every earlier exchange is ``<|user|> … <|assistant|> … <|end|>`` and the new
message is a fresh prompt. **Alpaca** has no turns: the earlier exchanges are folded into the ``### Input:``
section ("Earlier in this conversation: …") and the new message is the instruction, so the model sees an
ordinary instruction-with-input record. Both end with the style's response header, exactly like
:func:`helpers.data.format_prompt`; a one-turn conversation *is* ``format_prompt`` of the record.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from helpers.checkpoints import atomic_write_json
from helpers.data import format_prompt, get_style
from helpers.generation import generate
from helpers.review import STYLE_STOPS

HISTORY_HEADER = "Earlier in this conversation:"
PHI3_END = "<|end|>"


def _turns(history: Sequence[Mapping]) -> list[tuple[str, str]]:
    """``[{"role": "user", ...}, {"role": "assistant", ...}, ...]`` -> [(user, assistant), ...]."""
    turns, pending = [], None
    for i, message in enumerate(history):
        role, content = message.get("role"), message.get("content")
        if role not in ("user", "assistant") or not isinstance(content, str):
            raise ValueError(f"history[{i}] must be {{'role': 'user' | 'assistant', 'content': "
                             f"str}}, got {message!r}")
        if (role == "user") != (pending is None):
            raise ValueError(f"history[{i}]: turns must alternate user, assistant, user, ... (got {role!r})")
        if role == "user":
            pending = content
        else:
            turns.append((pending, content))
            pending = None
    if pending is not None:
        raise ValueError("history ends with a user message that has no answer; pass it as `message` instead")
    return turns


def conversation_record(message: str, history: Sequence[Mapping] = (), input_text: str = "") -> dict:
    """The Alpaca record of a conversation: the new message as instruction, earlier turns folded into
    input."""
    folded = [f"User: {user}\nAssistant: {assistant}" for user, assistant in _turns(history)]
    parts = (([HISTORY_HEADER + "\n" + "\n".join(folded)] if folded else [])
             + ([input_text] if input_text else []))
    return {"instruction": message, "input": "\n\n".join(parts)}


def conversation_prompt(message: str, history: Sequence[Mapping] = (), style: str = "alpaca",
                        input_text: str = "") -> str:
    """The prompt text for ``message`` after ``history`` (role/content dicts), ending with the response
    header.

    With no history this is ``format_prompt({"instruction": message, "input": input_text}, style)``.
    """
    style = get_style(style).name
    if style == "phi3":
        earlier = "".join(format_prompt({"instruction": user}, "phi3") + assistant + PHI3_END + "\n"
                          for user, assistant in _turns(history))
        return earlier + format_prompt({"instruction": message, "input": input_text}, "phi3")
    return format_prompt(conversation_record(message, history, input_text), style)


def chat(model, tokenizer, message: str, history: Sequence[Mapping] = (), style: str = "alpaca", *,
         max_new_tokens: int = 200, temperature: float = 0.0, top_k: int | None = None,
         seed: int | None = None, stream: bool | Callable[[str], None] = False) -> tuple[str, list[dict]]:
    """Answer ``message`` after ``history``; returns ``(reply, history + [user, assistant])``.

    The answer stops at the tokenizer's end-of-text or the style's stop strings (the start of a new prompt
    section). ``stream=True`` prints the tokens as they come; a function receives each new piece of text.
    """
    if not message.strip():
        raise ValueError("message is empty: type something to say to the model")
    prompt = conversation_prompt(message, history, style)
    [reply] = generate(model, tokenizer, [prompt], max_new_tokens=max_new_tokens, temperature=temperature,
                       top_k=top_k, seed=seed, stop=STYLE_STOPS.get(get_style(style).name, []) + [PHI3_END],
                       stream=stream)
    reply = reply.strip()
    return reply, [*history, {"role": "user", "content": message}, {"role": "assistant", "content": reply}]


class ChatBox:
    """A chat box in the notebook: text field, Send, the answer streaming in, Clear; saved as JSON.

    Every finished exchange is written (atomically) to ``path`` as ``{"style": ..., "messages": [...]}``,
    and an existing file is read back, so a restarted notebook continues the conversation.
    """

    def __init__(self, model, tokenizer, style: str = "alpaca", path=None, max_new_tokens: int = 200):
        import ipywidgets as widgets  # the notebook front end; the rest of the module works without it

        self.model, self.tokenizer, self.style = model, tokenizer, get_style(style).name
        self.max_new_tokens = max_new_tokens
        self.path = Path(path) if path is not None else None
        self.history: list[dict] = []
        if self.path is not None and self.path.exists():
            saved = json.loads(self.path.read_text(encoding="utf-8"))
            _turns(saved.get("messages", []))  # refuse a damaged file before using it
            self.history = list(saved.get("messages", []))
        layout = widgets.Layout
        # overflow (not overflow_y, which ipywidgets 8 drops) scrolls the log; column-reverse keeps the newest
        # message in view; width auto, not 100 %, leaves room for the widget's margins (no horizontal
        # scrollbar)
        self.log = widgets.HTML(layout=layout(width="auto", max_height="420px", overflow="auto",
                                              flex_flow="column-reverse", border="1px solid #ddd",
                                              padding="6px"))
        self.text = widgets.Text(placeholder="Type a message and press Enter or Send",
                                 layout=layout(flex="1"))
        self.send_button = widgets.Button(description="Send", button_style="primary",
                                          layout=layout(width="80px"))
        self.clear_button = widgets.Button(description="Clear", layout=layout(width="80px"))
        self.status = widgets.HTML()
        self.send_button.on_click(lambda _: self.send())
        self.text.on_submit(lambda _: self.send())
        self.clear_button.on_click(lambda _: self.clear())
        self.box = widgets.VBox([self.log, widgets.HBox([self.text, self.send_button, self.clear_button]),
                                 self.status], layout=layout(width="100%", max_width="820px"))
        self._render()

    def _render(self, partial: str | None = None) -> None:
        def bubble(role: str, text: str) -> str:
            color = "#eef4ff" if role == "user" else "#f4f4f4"
            return (f'<div style="margin:4px 0;padding:6px 10px;border-radius:8px;background:{color};'
                    'white-space:pre-wrap;overflow-wrap:anywhere;line-height:1.4">'
                    f'<b>{"You" if role == "user" else "Model"}:</b> '
                    f"{html.escape(text)}</div>")

        parts = [bubble(m["role"], m["content"]) for m in self.history]
        if partial is not None:
            parts.append(bubble("assistant", partial + " ▌"))
        self.log.value = "".join(parts) or '<i style="color:#888">No messages yet.</i>'

    def send(self, message: str | None = None) -> str:
        """Send ``message`` (default: the text field's) and stream the answer into the box; returns it."""
        message = self.text.value if message is None else message
        if not message.strip():
            self.status.value = "<i>Type a message first.</i>"
            return ""
        self.text.value, self.text.disabled, self.send_button.disabled = "", True, True
        self.status.value = "<i>answering …</i>"
        self.history.append({"role": "user", "content": message})
        shown = []

        def on_text(piece: str) -> None:
            shown.append(piece)
            self._render("".join(shown))

        try:
            reply, history = chat(self.model, self.tokenizer, message, self.history[:-1], self.style,
                                  max_new_tokens=self.max_new_tokens, stream=on_text)
        except Exception as error:
            self.history.pop()
            self.text.value = message  # give the typed text back
            self._render()
            self.status.value = f"<b>error:</b> {html.escape(str(error))}"
            raise
        finally:
            self.text.disabled, self.send_button.disabled = False, False
        self.history = history
        self.save()
        self._render()
        n = len(self.history) // 2
        self.status.value = (f"{n} exchange{'s' if n != 1 else ''}"
                             + (f", saved to {self.path}" if self.path else ""))
        return reply

    def clear(self) -> None:
        """Forget the conversation (and its file)."""
        self.history = []
        self.save()
        self._render()
        self.status.value = "cleared"

    def save(self) -> None:
        if self.path is not None:
            atomic_write_json(self.path, {"style": self.style, "messages": self.history})

    def show(self):
        return self.box

    def _repr_mimebundle_(self, **kwargs):
        return self.box._repr_mimebundle_(**kwargs)

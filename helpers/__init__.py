"""helpers: the code behind the instruction fine-tuning course.

Every notebook in ``notebooks/`` teaches one topic and then imports the real implementation from here,
so this package is the single source of truth. Modules are named by topic, in the order data flows:

- ``helpers.config``      FAST mode (``COURSE_FAST`` is read here only), device choice, seeds, run folders
- ``helpers.data``        load, validate, format (Alpaca / Phi-3), split and leak-check records (notebook 01)
- ``helpers.tokenizers``  one tokenizer interface over GPT-2 (offline tiktoken) and Gemma 3 (notebooks 02, 03)
- ``helpers.batching``    tokenize, collate (pad, shift, mask), length-grouped batches, loaders (notebook 02)
- ``helpers.models``      GPT-2 and Gemma 3 in plain PyTorch: ``body`` + ``head`` + KV cache (notebook 03)
- ``helpers.weights``     GGUF → float weights (cached as safetensors), GPT-2 hub safetensors (notebook 03)
- ``helpers.registry``    models by name: ``load_model``, ``model_table`` (notebook 03)
- ``helpers.generation``  batched KV-cache decoding: greedy, sampling, stop strings, streaming (notebook 03)
- ``helpers.training``    the training loop, early stopping, resume; ``helpers.checkpoints`` (notebook 04)
- ``helpers.plots``       loss curves and the other pictures (notebooks 04–06)
- ``helpers.review``      test-set responses, the manual review session and widget (notebook 05)
- ``helpers.judge``       the LLM judge client, prompts, calibration, agreement, pairwise (notebook 05)
- ``helpers.judge_server`` the embedded offline judge (llama.cpp) on 127.0.0.1 (notebook 05)
- ``helpers.evals``       multiple choice by log-likelihood (MMLU) (notebook 06)
- ``helpers.humaneval``   HumanEval completions run in a contained subprocess (notebook 06)
- ``helpers.suites``      what each standard benchmark measures, and loaders for the online ones (notebook 06)
- ``helpers.chat``        multi-turn prompts, streaming chat, the chat box (notebook 07)
- ``helpers.export``      transformers folder, Ollama Modelfile; ``helpers.export_gguf`` GGUF (notebook 07)
- ``helpers.lora``        LoRA layers: add, merge, train only the adapters (notebook 08)
- ``helpers.dpo``         preference pairs, the DPO loss and its training loop (notebook 09)
- ``helpers.course``      ``make course``: every notebook headless into ``runs/<timestamp>/``
- ``python -m helpers``   the command line: ``finetune`` (also LoRA), ``dpo``, ``course``, ``export``
"""

__version__ = "0.1.0"

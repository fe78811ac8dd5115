"""Checkpoints that survive a crash: safetensors for tensors, JSON for everything else (notebook 04).

A checkpoint is a *step*: three files written one by one, each to a temporary name first and then
renamed with ``os.replace`` (atomic on every OS we target), and last a small ``latest.json`` that lists
the last two checkpoints with the size and sha256 of every file. A run killed halfway through writing
leaves the previous ``latest.json`` and its files intact; a file damaged later (a full disk, a copy cut
short) fails its check on load and the previous checkpoint is used instead.

    step-000120.weights.safetensors     trainable parameters only (the frozen ones come from the base model)
    step-000120.optimizer.safetensors   AdamW moments + torch RNG states
    step-000120.state.json              step, epoch, batch position, history, schedule, Python/NumPy RNG
    latest.json                         {"step": 120, "checkpoints": [{step, files: {role: {name, size,
                                        sha256}}}, ...]}
    best.safetensors + best.json        the weights with the lowest validation loss so far (size and
                                        sha256 too)
    .lock                               held (an OS file lock) while a run writes here; names the holder's PID

Never pickle: ``torch.load`` on a file from the internet can run code; safetensors cannot.
JSON written here is strict: NaN and infinity become ``null`` with a ``<key>_note`` saying what they were.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import random
import tempfile
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load, load_file, save

from helpers.config import sha256_file

KEEP_CHECKPOINTS = 2  # the last N good checkpoints are kept (plus the best weights)


class CheckpointDamaged(RuntimeError):
    """No checkpoint in the folder passed its size and sha256 check; the message says how to start over."""


class FolderLocked(RuntimeError):
    """Another run (named by its PID) is writing into this folder right now."""


# ---- files written whole or not at all -------------------------------------------------------------


def atomic_write_bytes(path: Path, data: bytes) -> dict:
    """Write ``data`` to ``path`` via a temporary file and ``os.replace`` (never a half-written file).

    Returns ``{"name", "size", "sha256"}`` of what was written, for a checkpoint's manifest.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:  # an interrupted write leaves neither a half file nor its temp file
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return {"name": path.name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def strict_json(obj):
    """``obj`` with every NaN/infinite float replaced by None; in a dict, ``<key>_note`` says what it was."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        out = {}
        for key, value in obj.items():
            out[key] = strict_json(value)
            if isinstance(value, float) and not math.isfinite(value):
                out[f"{key}_note"] = "not a number (NaN)" if math.isnan(value) else f"{value} (infinite)"
        return out
    if isinstance(obj, (list, tuple)):
        return [strict_json(v) for v in obj]
    return obj


def atomic_write_json(path: Path, obj) -> dict:
    """Strict JSON (see :func:`strict_json`) written atomically; returns the file's manifest entry."""
    return atomic_write_bytes(path, json.dumps(strict_json(obj), indent=1, allow_nan=False).encode())


def atomic_save_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict | None = None) -> dict:
    """safetensors through a temporary name; tensors are made contiguous CPU copies. Returns the manifest
    entry."""
    cpu = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    return atomic_write_bytes(path, save(cpu, metadata={k: str(v) for k, v in (metadata or {}).items()}))


def verify_file(folder: Path, entry: dict) -> str | None:
    """None when ``folder/entry["name"]`` has the recorded size and sha256, else what is wrong with it."""
    path = Path(folder) / entry["name"]
    if not path.is_file():
        return f"{entry['name']} is missing"
    size = path.stat().st_size
    if "size" in entry and size != entry["size"]:
        return f"{entry['name']} has {size:,} bytes, {entry['size']:,} were written"
    if "sha256" in entry and sha256_file(path) != entry["sha256"]:
        return f"{entry['name']} has changed since it was written (sha256 differs)"
    return None


# ---- one writer per folder ---------------------------------------------------------------------------

_HELD_LOCKS: dict[Path, list] = {}  # folder -> [open lock file, depth]: re-entrant within one process


@contextlib.contextmanager
def folder_lock(folder: Path, what: str = "a fine-tuning run"):
    """Hold an OS file lock on ``folder/.lock`` for the ``with`` block; a second holder fails at once.

    The lock belongs to the process: it disappears when the process dies (``kill -9`` included), so a
    crashed run never leaves a stale lock behind. Nested use in the same process is allowed.
    """
    folder = Path(folder).resolve()
    if folder in _HELD_LOCKS:
        _HELD_LOCKS[folder][1] += 1
        try:
            yield folder
        finally:
            _HELD_LOCKS[folder][1] -= 1
        return
    folder.mkdir(parents=True, exist_ok=True)
    try:
        handle = take_lock(folder / ".lock", f"PID {os.getpid()}, {what}")
    except LockHeld as held:
        raise FolderLocked(
            f"{folder} is in use by another process ({held.holder}). Wait for it to finish, stop it, or "
            "write elsewhere (--out another folder).") from None
    _HELD_LOCKS[folder] = [handle, 1]
    try:
        yield folder
    finally:
        del _HELD_LOCKS[folder]
        handle.close()  # closing the file releases the lock


class LockHeld(OSError):
    """Another process holds the lock; ``holder`` is what it wrote into the lock file."""

    def __init__(self, holder: str):
        super().__init__(holder)
        self.holder = holder


def take_lock(lock_path: Path, label: str):
    """Lock ``lock_path`` (created if missing) and write ``label`` into it; returns the open file, whose
    closing releases the lock. Raises :class:`LockHeld` with the holder's label when it is taken."""
    handle = open(lock_path, "a+")
    try:
        lock_file(handle)
    except OSError:
        handle.seek(0)
        holder = handle.read().strip() or "unknown"
        handle.close()
        raise LockHeld(holder) from None
    handle.seek(0)
    handle.truncate()
    handle.write(label)
    handle.flush()
    return handle


def lock_file(handle) -> None:
    """An exclusive, non-blocking lock on an open file (fcntl on Linux/macOS, msvcrt on Windows)."""
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt

        handle.seek(0)
        msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
        return
    fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)


# ---- weights --------------------------------------------------------------------------------------


def trainable_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Parameters with ``requires_grad`` (a tied weight appears once, under its first name)."""
    seen, out = set(), {}
    for name, p in model.named_parameters():  # named_parameters already skips tied duplicates
        if p.requires_grad and id(p) not in seen:
            seen.add(id(p))
            out[name] = p
    return out


def save_weights(path: Path, model: torch.nn.Module, meta: dict | None = None,
                 only_trainable: bool = True) -> dict:
    """Save the trainable parameters (or all, deduplicated) of ``model`` as safetensors; returns the manifest
    entry."""
    tensors = trainable_state(model) if only_trainable else dict(model.named_parameters())
    return atomic_save_tensors(path, tensors, metadata={"format": "pt", **(meta or {})})


def load_weights(path: Path, model: torch.nn.Module) -> list[str]:
    """Copy the tensors saved in ``path`` into ``model``'s parameters of the same name; returns the names.

    The file may hold a subset (e.g. only the blocks that were trained); a name the model lacks or a
    shape that differs is an error, because it means the file belongs to another model.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"No weights at {path}. Train first (notebook 04 or `python -m "
                                "helpers finetune`).")
    tensors = load_file(str(path))
    params = dict(model.named_parameters())
    for name, value in tensors.items():
        if name not in params:
            raise KeyError(f"{path} holds '{name}', which this model does not have: wrong "
                           "model for this file?")
        if params[name].shape != value.shape:
            raise ValueError(f"{path}: '{name}' has shape {tuple(value.shape)}, model expects "
                             f"{tuple(params[name].shape)}")
        with torch.no_grad():
            params[name].copy_(value.to(params[name].device, params[name].dtype))
    return list(tensors)


# ---- optimizer and random states ------------------------------------------------------------------


def optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], list[dict]]:
    """Split ``optimizer.state_dict()`` into tensors (for safetensors) and param groups (for JSON)."""
    sd = optimizer.state_dict()
    tensors = {}
    for index, state in sd["state"].items():
        for key, value in state.items():
            tensors[f"state.{index}.{key}"] = value if torch.is_tensor(value) else torch.tensor(value)
    return tensors, sd["param_groups"]


def restore_optimizer(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor],
                      groups: list[dict]) -> None:
    state: dict[int, dict] = {}
    for key, value in tensors.items():
        if not key.startswith("state."):
            continue
        _, index, name = key.split(".", 2)
        state.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": groups})


def rng_snapshot() -> tuple[dict[str, torch.Tensor], dict]:
    """Every random state that training touches: torch (CPU and CUDA) as tensors, Python/NumPy as JSON."""
    tensors = {"rng.torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = s
    py_version, py_state, py_gauss = random.getstate()
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    json_part = {
        "python": [py_version, list(py_state), py_gauss],
        "numpy": [np_name, np_keys.tolist(), int(np_pos), int(np_has_gauss), float(np_gauss)],
    }
    return tensors, json_part


def restore_rng(tensors: dict[str, torch.Tensor], json_part: dict) -> None:
    torch.set_rng_state(tensors["rng.torch"])
    cuda = [tensors[k] for k in sorted(k for k in tensors if k.startswith("rng.cuda."))]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)
    v, s, g = json_part["python"]
    random.setstate((v, tuple(s), g))
    name, keys, pos, has_gauss, gauss = json_part["numpy"]
    np.random.set_state((name, np.array(keys, dtype=np.uint32), pos, has_gauss, gauss))


# ---- a whole training checkpoint ------------------------------------------------------------------


def save_checkpoint(folder: Path, step: int, model, optimizer, state: dict,
                    keep: int = KEEP_CHECKPOINTS) -> Path:
    """Write weights, optimizer + RNG tensors and ``state`` for ``step``, then list it first in
    ``latest.json``.

    ``latest.json`` keeps the last ``keep`` checkpoints with the size and sha256 of each file; the files
    of every other step are deleted after the pointer moved.
    """
    folder = Path(folder)
    stem = f"step-{step:06d}"
    opt_tensors, groups = optimizer_tensors(optimizer)
    rng_tensors, rng_json = rng_snapshot()
    files = {
        "weights": save_weights(folder / f"{stem}.weights.safetensors", model),
        "optimizer": atomic_save_tensors(folder / f"{stem}.optimizer.safetensors",
                                         {**opt_tensors, **rng_tensors}),
        "state": atomic_write_json(folder / f"{stem}.state.json",
                                   {**state, "step": step, "param_groups": groups, "rng": rng_json}),
    }
    earlier = [c for c in checkpoint_list(folder) if c["step"] != step]
    kept = [{"step": step, "files": files}, *earlier][:keep]
    atomic_write_json(folder / "latest.json", {"step": step, "checkpoints": kept})
    keep_stems = {f"step-{c['step']:06d}" for c in kept}
    for old in folder.glob("step-*"):  # older steps, or leftovers of an earlier run
        if old.name.split(".")[0] not in keep_stems:
            old.unlink(missing_ok=True)
    return folder / files["state"]["name"]


def remove_checkpoints(folder: Path) -> None:
    """Delete every checkpoint and the best weights of ``folder`` (a run that starts over)."""
    for path in [*Path(folder).glob("step-*"),
                 *(Path(folder) / n for n in ("latest.json", "best.json", "best.safetensors"))]:
        path.unlink(missing_ok=True)


def checkpoint_list(folder: Path) -> list[dict]:
    """The checkpoints ``latest.json`` lists, newest first (``[]`` when there is none or it is unreadable)."""
    pointer = Path(folder) / "latest.json"
    try:
        return json.loads(pointer.read_text())["checkpoints"]
    except (OSError, ValueError, KeyError, TypeError):
        return []


def latest_checkpoint(folder: Path) -> dict | None:
    """The newest entry of ``latest.json`` (``{"step", "files"}``), or None when nothing was saved yet."""
    found = checkpoint_list(folder)
    return found[0] if found else None


def damaged_files(folder: Path, entry: dict) -> list[str]:
    """What is wrong with the files of one checkpoint entry (empty when all pass size and sha256)."""
    return [problem for f in entry["files"].values() if (problem := verify_file(folder, f))]


def read_state(folder: Path, entry: dict) -> dict:
    """The JSON state of a checkpoint entry (not verified; see :func:`damaged_files`)."""
    return json.loads((Path(folder) / entry["files"]["state"]["name"]).read_text())


def load_checkpoint(folder: Path, model, optimizer, restore_random: bool = True) -> dict:
    """Load the newest *intact* checkpoint of ``folder`` into ``model`` and ``optimizer``; returns its state.

    Every file is checked against the size and sha256 recorded when it was written; a damaged checkpoint
    is reported and the previous one used. The RNG states are returned under ``state["_rng_tensors"]`` /
    ``state["rng"]`` so the caller can restore them at the right moment (after rebuilding the data order);
    ``restore_random`` restores now.
    """
    folder = Path(folder)
    entries = checkpoint_list(folder)
    if not entries:
        raise FileNotFoundError(f"No checkpoint in {folder} (no readable latest.json). Start without resume.")
    problems = []
    for entry in entries:
        damaged = damaged_files(folder, entry)
        if damaged:
            problems.append(f"step {entry['step']}: {'; '.join(damaged)}")
            print(f"Checkpoint of step {entry['step']} in {folder} is damaged ({'; '.join(damaged)}); "
                  "trying the previous one.")
            continue
        state = read_state(folder, entry)
        load_weights(folder / entry["files"]["weights"]["name"], model)
        tensors = load_file(str(folder / entry["files"]["optimizer"]["name"]))
        restore_optimizer(optimizer, tensors, state["param_groups"])
        state["_rng_tensors"] = {k: v for k, v in tensors.items() if k.startswith("rng.")}
        if restore_random:
            restore_rng(state["_rng_tensors"], state["rng"])
        return state
    raise CheckpointDamaged(
        f"No usable checkpoint in {folder}: {' | '.join(problems)}. Start over with --restart "
        f"(resume=False), or delete {folder}.")


def save_best(folder: Path, model, step: int, val_loss: float) -> None:
    """The best weights so far, ``best.safetensors``, and ``best.json`` with their size and sha256."""
    entry = save_weights(Path(folder) / "best.safetensors", model, {"step": step})
    atomic_write_json(Path(folder) / "best.json", {"step": step, "val_loss": val_loss, "file": entry})


def load_best(folder: Path, step: int) -> dict[str, torch.Tensor] | None:
    """The saved best weights of ``step`` when intact, else None (with a message saying what is wrong).

    After a fall-back to an older checkpoint the file can hold a later step's weights: not those either.
    """
    try:
        info = json.loads((Path(folder) / "best.json").read_text())
        problem = verify_file(folder, info["file"])
        if problem is None and info["step"] != step:
            problem = f"they are of step {info['step']}"
    except (OSError, ValueError, KeyError, TypeError) as error:
        problem = f"best.json is unreadable ({type(error).__name__})"
    if problem is None:
        return load((Path(folder) / "best.safetensors").read_bytes())
    print(f"The best weights of step {step} in {folder} are not usable ({problem}).")
    return None

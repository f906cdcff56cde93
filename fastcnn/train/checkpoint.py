"""Checkpoints: written atomically (temporary file in the same folder + os.replace, so a crash leaves
the previous checkpoint whole) and read with torch.load(weights_only=True)."""
from __future__ import annotations

import os
import tempfile

import torch

FORMAT = "fastcnn-train-1"


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used: corrupt, not ours, or from a different run."""


def save_atomic(payload: dict, path: str) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".checkpoint-", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load(path: str, expect: dict) -> dict:
    """The checkpoint at `path`; CheckpointError naming the file if it is unreadable or if one of the
    `expect` entries (network, size, seed, batch size, ...) differs from this run's."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for truncated / foreign files
        raise CheckpointError(f"checkpoint {path} is corrupt or not a fastcnn checkpoint "
                              f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from e
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"checkpoint {path} is not a fastcnn training checkpoint (format {FORMAT!r} expected)")
    for key, want in expect.items():
        got = payload.get("run", {}).get(key)
        if got != want:
            raise CheckpointError(f"checkpoint {path} does not match this run: {key} is {got!r} there, {want!r} here "
                                  "(use another --out, or the same settings)")
    return payload


def task_state(task, step: int, history: list, run: dict, progress: dict = None) -> dict:
    """Everything a resumed run needs; `progress`: the loop's clocks and evaluations so far (plain values),
    so that a resumed run's figures count the whole training, not only its own part."""
    state = {
        "format": FORMAT, "run": dict(run), "step": int(step), "history": list(history),
        "progress": dict(progress or {}),
        "nets": {k: v.state_dict() for k, v in task.nets.items()},
        "optimizers": {k: v.state_dict() for k, v in task.optimizers.items()},
        "schedulers": {k: v.state_dict() for k, v in task.schedulers.items()},
        "rng": {"torch": torch.get_rng_state()},
        "extra": task.extra_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["rng"]["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore(task, payload: dict, path: str) -> None:
    """Loads networks, optimizers, schedulers and the RNG into `task`."""
    try:
        for group in ("nets", "optimizers", "schedulers"):
            have = getattr(task, group)
            if set(payload[group]) != set(have):
                raise CheckpointError(f"checkpoint {path} holds {group} {sorted(payload[group])}, this run has "
                                      f"{sorted(have)}")
            for k, obj in have.items():
                obj.load_state_dict(payload[group][k])
    except (RuntimeError, KeyError, ValueError) as e:
        if isinstance(e, CheckpointError):
            raise
        raise CheckpointError(f"checkpoint {path} does not fit this network: {str(e).splitlines()[0]}") from e
    torch.set_rng_state(payload["rng"]["torch"])
    if "cuda" in payload["rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(payload["rng"]["cuda"])
    task.load_extra_state(payload.get("extra", {}))

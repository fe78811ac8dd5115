"""The course's loss plots (notebook 04); the judge's and the benchmarks' plots live with their modules.

- :func:`plot_losses`    train/val loss against epochs, a second x-axis for tokens seen (as in the book),
                         the best epoch marked and the overfitting region shaded; saved as PNG.
- :class:`LiveLossPlot`  the same picture redrawn in place while a notebook trains.

Every function takes an optional ``ax`` and returns the matplotlib Figure, so notebooks can combine them.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt


def _rows(history) -> list[dict]:
    """Accept a History, a list of row dicts or a pandas DataFrame."""
    if hasattr(history, "rows"):
        return list(history.rows)
    if hasattr(history, "to_dict"):
        return history.to_dict("records")
    return list(history)


def _best_and_overfit(rows: list[dict]) -> tuple[int | None, float | None]:
    """Index of the row with the lowest val loss, and the epoch where overfitting starts (or None)."""
    if not rows:
        return None, None
    best = min(range(len(rows)), key=lambda i: rows[i]["val_loss"])
    later = rows[best + 1:]
    rises = any(r["val_loss"] > rows[best]["val_loss"] for r in later)
    train_falls = bool(later) and later[-1]["train_loss"] < rows[best]["train_loss"]
    return best, (rows[best]["epoch"] if rises and train_falls else None)


def plot_losses(history, path=None, ax=None, title: str = "Fine-tuning loss"):
    """Train and validation loss against epochs, with tokens seen on a second x-axis.

    ``history``: a :class:`helpers.training.History`, its rows, or a DataFrame with columns
    ``epoch, tokens_seen, train_loss, val_loss``. Saved to ``path`` (PNG) when given.
    """
    rows = _rows(history)
    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 3.5))
    else:
        fig = ax.figure
    epochs = [r["epoch"] for r in rows]
    ax.plot(epochs, [r["train_loss"] for r in rows], "-o", ms=3, label="training loss")
    ax.plot(epochs, [r["val_loss"] for r in rows], "--o", ms=3, label="validation loss")
    best, overfit = _best_and_overfit(rows)
    if best is not None:
        ax.axvline(rows[best]["epoch"], color="grey", lw=1, ls=":")
        ax.plot([rows[best]["epoch"]], [rows[best]["val_loss"]], "*", ms=12, color="C2",
                label=f"best val {rows[best]['val_loss']:.3f} (epoch {rows[best]['epoch']:.2f})")
    if overfit is not None:
        ax.axvspan(overfit, epochs[-1], color="C3", alpha=0.08, label="overfitting")
    ax.set_xlabel("epochs")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.legend(loc="upper right", fontsize=8)
    if len(rows) >= 2 and epochs[-1] > epochs[0]:
        # Second x-axis: tokens seen, mapped linearly between the first and last row (as in the book).
        e0, e1 = epochs[0], epochs[-1]
        t0, t1 = rows[0]["tokens_seen"], rows[-1]["tokens_seen"]
        scale = (t1 - t0) / (e1 - e0) if e1 != e0 else 1.0
        top = ax.secondary_xaxis("top", functions=(lambda e: t0 + (e - e0) * scale,
                                                   lambda t: e0 + (t - t0) / (scale or 1.0)))
        top.set_xlabel("tokens seen")
    return _finish(fig, ax, path)


def save_figure(fig, path) -> Path:
    """Save ``fig`` as PNG (folders created) and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    return path


class LiveLossPlot:
    """Redraws :func:`plot_losses` in one notebook output while training runs (IPython display update)."""

    def __init__(self):
        from IPython.display import display

        self.fig, self.ax = plt.subplots(figsize=(6, 3.5))
        plt.close(self.fig)  # shown through the display handle only, not again at the end of the cell
        self.handle = display(self.fig, display_id=True)

    @classmethod
    def if_in_notebook(cls):
        """A LiveLossPlot when running inside a Jupyter kernel, else None."""
        try:
            from IPython import get_ipython

            shell = get_ipython()
        except ImportError:
            return None
        if shell is None or type(shell).__name__ != "ZMQInteractiveShell":
            return None
        return cls()

    def update(self, rows) -> None:
        self.ax.clear()
        # A fresh top axis each time: remove the secondary axes of the previous draw.
        for child in list(self.ax.child_axes):
            child.remove()
        plot_losses(rows, ax=self.ax)
        self.handle.update(self.fig)


def _finish(fig, ax, path=None, xlabel=None, ylabel=None, title=None):
    """Label the axes, tighten the layout and save as PNG when ``path`` is given; returns ``fig``."""
    if xlabel is not None:
        ax.set_xlabel(xlabel)
    if ylabel is not None:
        ax.set_ylabel(ylabel)
    if title is not None:
        ax.set_title(title)
    fig.tight_layout()
    if path is not None:
        save_figure(fig, path)
    return fig


__all__ = ["plot_losses", "LiveLossPlot", "save_figure"]

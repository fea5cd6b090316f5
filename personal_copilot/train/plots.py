"""PNG plots of a training run, drawn from `metrics.jsonl`: loss (train and eval) and learning rate by step."""

from __future__ import annotations

from pathlib import Path

from personal_copilot.train.metrics import read_metrics


def plot_training_curves(output_dir: Path) -> list[Path]:
    """Writes `loss.png` and `learning_rate.png` into `output_dir`; returns the files written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = read_metrics(Path(output_dir) / "metrics.jsonl")
    series = {
        "loss.png": [("train loss", "loss"), ("eval loss", "eval_loss")],
        "learning_rate.png": [("learning rate", "learning_rate")],
    }
    written = []
    for name, curves in series.items():
        figure, axes = plt.subplots(figsize=(7, 4), dpi=100)
        for label, key in curves:
            points = [(m["step"], m[key]) for m in metrics if key in m]
            if points:
                steps, values = zip(*points, strict=True)
                axes.plot(steps, values, marker="o" if len(points) < 30 else None, markersize=3, label=label)
        axes.set_xlabel("step")
        axes.set_ylabel(curves[0][0] if len(curves) == 1 else "loss")
        axes.grid(alpha=0.3)
        if len(curves) > 1:
            axes.legend()
        figure.tight_layout()
        figure.savefig(Path(output_dir) / name)
        plt.close(figure)
        written.append(Path(output_dir) / name)
    return written

"""Forecast-vs-actual figure."""
import numpy as np

from transferkit.reporting.plots import forecast_png


def test_forecast_png():
    t = np.arange(120)
    window = (np.sin(t[:96] / 4), np.sin(t[96:] / 4), np.sin(t[96:] / 4) + 0.1, {"seasonal naive": np.zeros(24)})
    png = forecast_png([window, window, window], "OT")
    assert png.startswith(b"\x89PNG")
    assert forecast_png([], "OT") is None


def test_step_and_epoch_axes_tick_whole_numbers(monkeypatch):
    """A horizon of 3 steps (or 3 epochs) is ticked 0, 1, 2, not 0.5, 1.5, 2.5."""
    import numpy as np

    from transferkit.reporting import plots

    figures = []
    monkeypatch.setattr(plots, "_to_png", lambda fig: figures.append(fig) or b"png")
    plots.forecast_png([(np.arange(6.0), np.arange(3.0), np.arange(3.0), {})], "OT")
    plots.learning_curves_png([{"epoch": e, "train_loss": 1.0 / e, "val_loss": 1.2 / e} for e in (1, 2, 3)])
    assert len(figures) == 2
    for fig in figures:
        for ax in fig.axes:
            if ax.get_xlabel() in ("steps from forecast origin", "epoch"):
                fig.canvas.draw()
                ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
                assert ticks and all(float(t).is_integer() for t in ticks), ticks

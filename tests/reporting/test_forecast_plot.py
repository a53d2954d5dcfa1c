"""Forecast-vs-actual figure."""
import numpy as np

from transferkit.reporting.plots import forecast_png


def test_forecast_png():
    t = np.arange(120)
    window = (np.sin(t[:96] / 4), np.sin(t[96:] / 4), np.sin(t[96:] / 4) + 0.1, {"seasonal naive": np.zeros(24)})
    png = forecast_png([window, window, window], "OT")
    assert png.startswith(b"\x89PNG")
    assert forecast_png([], "OT") is None

"""Training output: quiet by default from the Python API, bars on stderr, epochs counted from 1."""
from __future__ import annotations

import subprocess
import sys
import textwrap

from transferkit.strategies.progress import epoch_label

from transferkit.testing import make_image_folder


def test_epoch_label_counts_from_one():
    assert epoch_label(0, 1) == "Epoch 1/1"
    assert [epoch_label(i, 2) for i in range(2)] == ["Epoch 1/2", "Epoch 2/2"]
    assert epoch_label(4, None) == "Epoch 5"


def test_python_api_fit_is_quiet_with_bars_on_stderr(tmp_path):
    """A real fit from Python, in a fresh process (Lightning's banners are logged once per process)."""
    data = make_image_folder(tmp_path / "data", per_class=8, size=32)
    script = textwrap.dedent(f"""
        import warnings
        from transferkit import ImageClassifier
        ImageClassifier(strategy="fine-tune", epochs=2, image_size=32, baseline=False).fit({str(data)!r})
        warnings.warn("the user's own warning")
        print("done")
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    err = result.stderr.replace("\r", "\n")
    assert result.stdout.strip() == "done"  # no bar or banner on stdout
    assert "Epoch 1/2" in err and "Epoch 2/2" in err and "Epoch 0" not in err
    for noise in ("GPU available", "TPU available", "Tip:", "LeafSpec", "eval mode", "DeprecationWarning",
                  "does not have many workers"):
        assert noise not in err, noise
    assert "the user's own warning" in err  # scoped: the user's warnings still show

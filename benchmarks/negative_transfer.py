"""Where transfer helps and where it does not: the negative-transfer guard on real data.

Each run fits a pretrained backbone (with the default from-scratch control of the same
architecture on the same split) and records the transfer verdict and the domain-shift score:

  flowers5 × EfficientNet-Lite0 (ImageNet)   natural photos, close to the source: transfer should win
  flowers5 × MNIST CNN                        photos from a handwriting model: far source
  digits   × MNIST CNN                        scikit-learn's 8×8 digits from an MNIST model: near source
  digits   × EfficientNet-Lite0 (ImageNet)    tiny grayscale digits from ImageNet: far source

flowers5: stratified 80/20 split, seed 0, linear-probe (Lite0 at 128 px) or fine-tune (MNIST CNN,
28 px, 6 epochs). digits: 1,797 images upscaled to 32 px, 80/20 split, fine-tune 6 epochs.
Writes benchmarks/results/negative_transfer.json.

    python benchmarks/negative_transfer.py
"""
from __future__ import annotations

import json
import logging
import tempfile
import time
import warnings
from pathlib import Path

import torch

from transferkit import ImageClassifier

HERE = Path(__file__).resolve().parent
FLOWERS = HERE.parent.parent / "shared" / "datasets" / "flowers5"


def digits_folder(root: Path) -> Path:
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    for i, (pixels, label) in enumerate(zip(digits.images, digits.target)):
        folder = root / "digits" / str(label)
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray((pixels / 16 * 255).astype("uint8")).resize((32, 32), Image.NEAREST).save(folder / f"{i}.png")
    return root / "digits"


def main() -> None:
    warnings.filterwarnings("ignore")
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    out = HERE / "results" / "negative_transfer.json"
    results = {"command": "python benchmarks/negative_transfer.py", "threads": torch.get_num_threads(), "runs": {}}
    with tempfile.TemporaryDirectory() as tmp:
        digits = digits_folder(Path(tmp))
        runs = {
            "flowers5 × efficientnet_lite0": (FLOWERS, dict(backbone="efficientnet_lite0", strategy="linear-probe",
                                                            image_size=128)),
            "flowers5 × mnist_cnn": (FLOWERS, dict(backbone="mnist_cnn", strategy="fine-tune", epochs=6)),
            "digits × mnist_cnn": (digits, dict(backbone="mnist_cnn", strategy="fine-tune", epochs=6)),
            "digits × efficientnet_lite0": (digits, dict(backbone="efficientnet_lite0", strategy="fine-tune",
                                                         epochs=6, image_size=32)),
        }
        for name, (data, params) in runs.items():
            start = time.perf_counter()
            clf = ImageClassifier(progress=False, **params).fit(data)
            metrics = clf.evaluate()
            check, shift = metrics["transfer"], (clf.domain_ or {}).get("batchnorm_shift")
            results["runs"][name] = {
                "params": params, "test_accuracy": metrics["accuracy"], "control": clf.control_,
                "transfer": check, "domain": clf.domain_, "seconds": time.perf_counter() - start,
            }
            print(f"{name:30s} transferred {check['model']:.3f}  scratch {check['baseline']:.3f}  "
                  f"gain {check['gain']:+.3f} (±{check['noise']:.3f}) {check['verdict']:10s} "
                  f"shift {shift['shift'] if shift else float('nan'):.2f}  "
                  f"separable {clf.domain_['separability']['cv_accuracy']:.2f}", flush=True)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(results, indent=2, default=float))
    print(f"written to {out}")


if __name__ == "__main__":
    main()

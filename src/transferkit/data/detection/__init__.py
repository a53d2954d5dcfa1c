"""Object-detection data: VOC/COCO/YOLO readers, validation with one line per problem, splits,
the torch dataset with box-safe augmentation, and mAP metrics."""
from ..._lazy import lazy_exports

_EXPORTS = {
    **dict.fromkeys(("CLIP_TOLERANCE", "DetectionData", "DetectionItem", "FormatReader", "Problems"), ".base"),
    **dict.fromkeys(("DETECTION_FORMATS", "DetectionFormatInfo", "detect_format", "load_detection"), ".formats"),
    **dict.fromkeys(("DetectionDataset", "collate_detection", "detection_transform", "to_original"), ".dataset"),
    **dict.fromkeys(("detection_metrics", "precision_recall_curves"), ".metrics"),
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)  # torch loads with the dataset and metrics only

__all__ = sorted(_EXPORTS)

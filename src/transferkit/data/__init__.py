"""Data: reading, validating and splitting user data sets."""
from .._lazy import lazy_exports

_EXPORTS = {
    "ImageDataset": ".datasets",
    **dict.fromkeys(("ImageFolderData", "Samples", "SkippedFile", "load_image_folder", "scan_class_folders"), ".image_folder"),
    **dict.fromkeys(("IMAGE_EXTENSIONS", "open_rgb"), ".images"),
    **dict.fromkeys(("sample_per_class", "stratified_carve"), ".splits"),
    **dict.fromkeys(("TextDataset", "TextSamples", "TextTableData", "TokenCollator", "load_text_data", "read_text_table"), ".text"),
    **dict.fromkeys(("eval_transform", "train_transform"), ".transforms"),
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)  # torch/PIL load with the submodule that needs them

__all__ = sorted(_EXPORTS)

"""Data: reading, validating and splitting user data sets."""
from .datasets import ImageDataset
from .image_folder import ImageFolderData, Samples, SkippedFile, load_image_folder, scan_class_folders
from .images import IMAGE_EXTENSIONS, open_rgb
from .splits import sample_per_class, stratified_carve
from .text import TextDataset, TextSamples, TextTableData, TokenCollator, load_text_data, read_text_table
from .transforms import eval_transform, train_transform

__all__ = [
    "IMAGE_EXTENSIONS", "ImageDataset", "ImageFolderData", "Samples", "SkippedFile", "eval_transform",
    "load_image_folder", "open_rgb", "scan_class_folders", "train_transform",
    "TextDataset", "TextSamples", "TextTableData", "TokenCollator", "load_text_data", "read_text_table",
    "sample_per_class", "stratified_carve",
]

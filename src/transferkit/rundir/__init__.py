"""The run directory: its file names, its schema, safe readers, and preparing `--out` for a fit.

A run directory is what `transferkit fit` writes and `predict`/`evaluate`/`--backbone RUN` read:
config.json (schema in `files`, plus the task's own keys), model.safetensors, history.csv,
split.json, metrics.json, report.html and, while training, checkpoints/. Every reader here turns
a bad file into one `RunDirectoryError` line that names the file and what is wrong with it; no
reader unpickles anything (weights are safetensors; checkpoints load with `weights_only=True`).

This package sits at the bottom of the package (it imports no other transferkit layer), and
imports torch only inside the functions that need it. `files` holds the names, readers and writers,
`out` prepares a fit's output folder, `records` reads what a run records about itself (data
locations, metrics, lineage, exports); every public name is importable from here.
"""
from ..safe_json import JsonProblem, parse_json, schema_problem  # noqa: F401 (read back through them)
from .files import (CHECKPOINT_DIR, CONFIG_FILE, CONFIG_SCHEMA, EXAMPLES_FILE, EXPORTS_FILE, HISTORY_FILE,  # noqa: F401
                    LAST_CHECKPOINT, LOCK_FILE, MEMORY_FEATURES, MEMORY_FILE, METRICS_FILE, ONNX_FILE,
                    ONNX_INT8_FILE, REPORT_FILE, RUN_FILES, RUN_FORMAT, SPLIT_FILE, TOKENIZER_DIR, WEIGHTS_FILE,
                    check_tensor_shapes, read_checkpoint, read_config, read_head_weights, read_history, read_json,
                    read_weights, run_parents, safetensors_header, upgrade_weights, write_history, write_text)
from .out import PreparedRun, file_above, is_complete_run, output_folder, prepare_out, remove_empty_folders  # noqa: F401
from .records import (CROSS_VALIDATION, EXPORT_ENTRY_SCHEMA, LINEAGE_STEP_OPTIONAL, LINEAGE_STEP_SCHEMA,  # noqa: F401
                      METRICS_FORMAT, METRICS_SCHEMAS, TEST, Evaluation, evaluation_of, metrics_record,
                      read_exports, read_lineage, read_metrics, record_data_location, resolve_data_root)

"""Run an exported model (ONNX) with onnxruntime alone: no torch, on an edge device or a server."""

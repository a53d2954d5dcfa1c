"""Export a run to ONNX (fp32 or int8), checked against PyTorch before it is written as done."""

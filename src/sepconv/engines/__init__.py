"""The engines a model runs on and what prepares it for them: BatchNorm folding, ONNX export and
graph clean-up, ONNX Runtime sessions, int8 quantization, shapes and example inputs."""

"""Sentences to vectors: the encoder spec and precision gate, torch and ONNX runtimes, the int8 graph, the embedding store."""

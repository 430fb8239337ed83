"""File formats, the bottom layer: what we write and read, checked before it is trusted.

    checkpoint  our checkpoint: one .safetensors file, the generator config in its JSON header
    exported    an exported folder: model.json + ONNX graphs (+ TensorRT engines), hash-checked
    triton      the `triton://` model address and the model parameter a Triton repository carries
    fileio      atomic writes, folders made and removed again, safe file names
"""

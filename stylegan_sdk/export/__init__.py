"""Exporters: the writers that turn a model into files other runtimes run. They import `loading` and the
backends; nothing below them imports them.

    onnx        mapping.onnx + synthesis.onnx + model.json, verified on ONNX Runtime (torch + onnx)
    tensorrt    mapping.plan + synthesis.plan from an exported folder (tensorrt + an NVIDIA GPU)
    triton      a Triton Inference Server model repository from an exported folder
    cli         `stylegan export onnx|tensorrt|triton` (and export/to_*.py)
"""

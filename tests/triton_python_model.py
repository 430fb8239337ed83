"""A Triton python-backend model that runs the model.onnx beside it with ONNX Runtime (tests only).

The wheel's tritonserver has no ONNX Runtime backend, so tests/test_triton_server.py swaps each exported
config.pbtxt's `platform: "onnxruntime_onnx"` for `backend: "python"` and puts this file next to the
model.onnx; everything else in the config (max_batch_size, dynamic batching, inputs, outputs, instance
groups, parameters) stays as export/to_triton.py wrote it. The requests Triton's dynamic batcher hands
over together run as one batch, as the ONNX Runtime backend would run them.
"""

import json
import os

import numpy as np
import onnxruntime as ort
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        folder = os.path.join(args["model_repository"], args["model_version"])
        self.session = ort.InferenceSession(os.path.join(folder, "model.onnx"), providers=["CPUExecutionProvider"])
        self.inputs = [tensor["name"] for tensor in config["input"]]
        self.outputs = [tensor["name"] for tensor in config["output"]]

    def execute(self, requests):
        try:
            feeds = [{name: pb_utils.get_input_tensor_by_name(r, name).as_numpy() for name in self.inputs}
                     for r in requests]
            rows = [len(feed[self.inputs[0]]) for feed in feeds]
            merged = {name: np.concatenate([feed[name] for feed in feeds]) for name in self.inputs}
            results = self.session.run(self.outputs, merged)
        except Exception as e:  # answered to every request of the batch, never a crash of the stub
            return [pb_utils.InferenceResponse(error=pb_utils.TritonError(str(e))) for _ in requests]
        responses, start = [], 0
        for n in rows:
            tensors = [pb_utils.Tensor(name, np.ascontiguousarray(out[start:start + n]))
                       for name, out in zip(self.outputs, results)]
            responses.append(pb_utils.InferenceResponse(output_tensors=tensors))
            start += n
        return responses

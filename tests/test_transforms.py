"""StyleGAN3 input transforms in the API: one definition (calls.Transform) on every path."""

from __future__ import annotations

import re

import numpy as np
import pytest

from stylegan_sdk import calls, latents
from stylegan_sdk._proto import codec, pb
from stylegan_sdk.config import GeneratorConfig

SG2 = GeneratorConfig(z_dim=8, w_dim=8, img_resolution=8, channel_base=64, channel_max=8, mapping_layers=1)


def test_make_transform_is_the_official_one():
    """gen_images.py: rotation by the angle, then translation; the input transform is its inverse."""
    m = latents.make_transform((0.1, -0.05), 10.0)
    a = np.radians(10.0)
    np.testing.assert_allclose(m, [[np.cos(a), np.sin(a), 0.1], [-np.sin(a), np.cos(a), -0.05], [0, 0, 1]])
    np.testing.assert_allclose(latents.input_transform((0.1, -0.05), 10.0) @ m, np.eye(3), atol=1e-6)
    assert latents.input_transform((0, 0), 0).dtype == np.float32


@pytest.mark.parametrize("kwargs, message", [
    (dict(translate=(0.1, 0)), "translate: this model (stylegan2) has no input transform"),
    (dict(rotate=5), "rotate: this model (stylegan2) has no input transform"),
    (dict(transform=np.diag([2.0, 1, 1])), "transform: this model (stylegan2) has no input transform"),
    (dict(translate=(1, 2), transform=np.eye(3)), "transform: give translate / rotate or transform, not both"),
    (dict(translate=(1, 2, 3)), "translate: expected shape [2]"),
    (dict(rotate=float("nan")), "rotate: values must be finite"),
    (dict(transform=np.eye(2)), "transform: expected a [3, 3] matrix"),
])
def test_bad_or_unsupported_transforms_are_value_errors(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        calls.Transform.check(SG2, **kwargs)


def test_identity_is_accepted_everywhere_and_sg2_gets_no_transform_input():
    for kwargs in (dict(), dict(translate=(0, 0), rotate=0), dict(transform=np.eye(3))):
        t = calls.Transform.check(SG2, **kwargs)
        assert t.is_identity and t.rows(3) is None


def test_rows_and_camera_paths_on_a_stylegan3_config():
    sg3 = calls.Transform(translate=np.array([0.1, -0.05]), rotate=np.array(10.0), enabled=True)
    rows = sg3.rows(2)
    assert rows.shape == (2, 3, 3) and rows.dtype == np.float32
    np.testing.assert_allclose(rows[1], latents.input_transform((0.1, -0.05), 10.0))
    # One translate / rotate per keyframe: lerped between keyframes like the latents.
    path = calls.Transform(translate=np.array([[0.0, 0.0], [1.0, 0.0]]), rotate=np.array([0.0, 90.0]), enabled=True)
    frames = path.along([(0, 0.0), (0, 0.5), (0, 1.0)])
    np.testing.assert_allclose(frames[1], latents.input_transform((0.5, 0.0), 45.0), atol=1e-6)
    np.testing.assert_allclose(frames[2], latents.input_transform((1.0, 0.0), 90.0), atol=1e-6)
    raw = calls.Transform(matrix=np.diag([2.0, 2.0, 1.0]).astype(np.float32), enabled=True)
    np.testing.assert_array_equal(raw.rows(1)[0], np.diag([2.0, 2.0, 1.0]))


def test_transforms_travel_through_the_proto_unchanged():
    for t in (calls.Transform(translate=np.array([0.1, -0.05]), rotate=np.array(10.0)),
              calls.Transform(translate=np.array([[0.0, 0.1], [0.2, 0.3], [0.4, 0.5]]), rotate=np.array([1.0, 2, 3])),
              calls.Transform(matrix=np.array([[1.8, 0.6, 0.15], [-0.4, 2.2, -0.1], [0, 0, 1]], np.float32))):
        msg = pb.Transform.FromString(codec.transform_to_pb(t).SerializeToString())
        translate, rotate, matrix = codec.transform_args(msg)
        for sent, got in ((t.translate, translate), (t.rotate, rotate), (t.matrix, matrix)):
            assert (sent is None) == (got is None)
            if sent is not None:
                np.testing.assert_array_equal(np.asarray(got, np.float32), np.asarray(sent, np.float32))
    assert codec.transform_to_pb(calls.Transform()) is None
    with pytest.raises(ValueError, match="transform: expected 9 values"):
        codec.transform_args(pb.Transform(matrix=[1, 2, 3]))
    with pytest.raises(ValueError, match="translate: expected"):
        codec.transform_args(pb.Transform(translate=[1, 2, 3]))


def test_every_path_refuses_a_transform_on_stylegan2(skip32_generator, G_ort, skip32_dir):
    """In process (torch and ONNX Runtime), through the client and on the wire: the same ValueError."""
    import grpc

    import stylegan_sdk as sg
    from serving import serve_in_thread
    from stylegan_sdk._proto import pb_grpc

    message = re.escape("translate: this model (stylegan2) has no input transform")
    ws = skip32_generator.map(sg.seed_to_z([0], 64))
    for G in (skip32_generator, G_ort):
        with pytest.raises(ValueError, match=message):
            G.generate(0, translate=(0.1, 0))
        with pytest.raises(ValueError, match=message):
            G.synthesize(ws, translate=(0.1, 0))
        with pytest.raises(ValueError, match=message):
            G.interpolate([0, 1], num_frames=3, translate=[(0, 0), (0.1, 0)])
        assert G.generate(0, translate=(0, 0), rotate=0, output="uint8").shape == (32, 32, 3)
    with serve_in_thread({"m": G_ort}) as bg, sg.Client(bg.target, timeout=30) as C:
        with pytest.raises(ValueError, match=message):
            C.mix(ws, ws, [0], translate=(0.1, 0))
        with grpc.insecure_channel(bg.target) as channel, pytest.raises(grpc.RpcError) as e:
            render = pb.RenderOptions(transform=pb.Transform(translate=[0.1, 0.0]))
            pb_grpc.StyleGANStub(channel).Generate(pb.GenerateRequest(seeds=pb.SeedList(values=[0]), render=render),
                                                   timeout=30)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and re.match(message, e.value.details())
        np.testing.assert_array_equal(C.generate(0, rotate=0, output="uint8"), G_ort.generate(0, output="uint8"))

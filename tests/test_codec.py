"""The codec (stylegan_sdk._proto.codec) owns both directions of every message: a call's arguments encoded
(the client) and decoded (the server) give the same arguments back, and what the client plans is, once
decoded and checked on the server, the very call the client checked. No server, no torch."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from conftest import run_without_torch

from stylegan_sdk import calls, images, latents
from stylegan_sdk._proto import codec, pb
from stylegan_sdk.client import planning
from stylegan_sdk.client.planning import RemoteModel
from stylegan_sdk.config import GeneratorConfig, ModelInfo
from stylegan_sdk.editing.directions import Directions
from stylegan_sdk.projection.options import ProjectCall, Projection, ProjectionUnavailable

SG2 = GeneratorConfig(z_dim=8, w_dim=8, img_resolution=8, channel_base=64, channel_max=8, mapping_layers=1)
COND = dataclasses.replace(SG2, c_dim=3, class_names=("ant", "bee", "cat"))
SG3 = GeneratorConfig(arch="stylegan3", z_dim=8, w_dim=8, img_resolution=16, img_channels=3, mapping_layers=1,
                      channel_base=128, channel_max=8, num_layers=4, margin_size=4)

rng = np.random.RandomState(0)

# Two direction sets of SG2 (w_dim 8, num_ws 4): one for every ws row, one GANSpace-like set for rows 0-1.
SETS = {
    "attrs": Directions(vectors=np.eye(3, 8, dtype=np.float32), values=np.array([3.0, 2.0, 1.0]),
                        names=("a", "smile", "c"), kind="boundary", layers=None, model={"w_dim": 8},
                        meta={"samples": 10}),
    "pcs": Directions(vectors=np.eye(2, 8, 5, dtype=np.float32), values=np.array([0.5, 0.25]), names=("pc0", "pc1"),
                      kind="ganspace", layers=(0, 1), mean=np.arange(8, dtype=np.float32)),
}
EDITS = {"attrs": {"smile": 2.5, 0: -1.0}, "pcs": {"1": 0.75}}


def floats(*shape: int) -> np.ndarray:
    return rng.randn(*shape).astype(np.float32)


def ws_of(cfg: GeneratorConfig, n: int) -> np.ndarray:
    return floats(n, cfg.num_ws, cfg.w_dim)


def same(a, b, ignore: frozenset[str] = frozenset(), where: str = "") -> None:
    """Equal values: dataclasses field by field (except `ignore`), arrays in dtype, shape and every element,
    lists element-wise, everything else with == and the same type."""
    if dataclasses.is_dataclass(a):
        assert type(a) is type(b), where
        for f in dataclasses.fields(a):
            if f.name not in ignore:
                same(getattr(a, f.name), getattr(b, f.name), ignore, f"{where}.{f.name}")
    elif isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray), (where, b)
        assert a.dtype == b.dtype and a.shape == b.shape, (where, a.dtype, b.dtype, a.shape, b.shape)
        np.testing.assert_array_equal(a, b, err_msg=where)
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b), (where, a, b)
        for k, (x, y) in enumerate(zip(a, b)):
            same(x, y, ignore, f"{where}[{k}]")
    else:
        assert type(a) is type(b) and a == b, (where, a, b)


def through_the_wire(msg):
    """Serialized and parsed again, as the other side receives it."""
    return type(msg).FromString(msg.SerializeToString())


# ----------------------------------------------------------------------------
# Every request: encode, then decode, gives the same arguments


def request_cases() -> list:
    sg2_ws, sg3_ws = ws_of(SG2, 2), ws_of(SG3, 3)
    return [
        codec.GenerateArgs(seeds=[0, 7, 2**32 - 1]),
        codec.GenerateArgs(z=floats(3, 8), mapping=codec.MapOptionsArgs(c=np.eye(3, dtype=np.float32), psi=0.7,
                                                                        cutoff=2),
                           render=codec.RenderArgs(noise_mode="random", noise_seed=5, fmt=pb.RAW_UINT8),
                           return_ws=True, model="m"),
        codec.GenerateArgs(seeds=[4], mapping=codec.MapOptionsArgs(c=2, psi=-0.5),
                           render=codec.RenderArgs(noise_mode="none", fmt=pb.JPEG, quality=55,
                                                   translate=np.array([0.1, -0.2]), rotate=12.5)),
        codec.GenerateArgs(z=floats(8), render=codec.RenderArgs(fmt=pb.RAW_FLOAT32, transform=np.diag([2.0, 2, 1]))),
        codec.GenerateArgs(seeds=[42], edits={"attrs": {"smile": 3.0, 0: -1.5}, "pcs": {"1": 0.25}}),
        codec.MapArgs(seeds=[1, 2]),
        codec.MapArgs(z=floats(4, 8), mapping=codec.MapOptionsArgs(c=floats(4, 3), cutoff=0), model="cond"),
        codec.SynthesizeArgs(ws=sg2_ws),
        codec.SynthesizeArgs(ws=sg2_ws, edits={"attrs": {2: 1.0}}),
        codec.SynthesizeArgs(ws=sg3_ws[0], render=codec.RenderArgs(noise_mode="random", fmt=pb.RAW_FLOAT32,
                                                                   rotate=-30.0), model="sg3"),
        codec.MixArgs(w_a=sg2_ws, w_b=sg2_ws[::-1], layers=[0, 3],
                      render=codec.RenderArgs(noise_mode="random", noise_seed=0, fmt=pb.RAW_UINT8)),
        codec.MixArgs(w_a=sg2_ws, w_b=sg2_ws, layers=[1], edits={"pcs": {"pc0": -2.0}}, model="m"),
        codec.InterpolateArgs(seeds=[1, 5, 9], num_frames=4, mapping=codec.MapOptionsArgs(psi=0.6)),
        codec.InterpolateArgs(z=floats(2, 8), num_frames=3, space="z", return_ws=True,
                              render=codec.RenderArgs(noise_mode="random", noise_seed=3, fmt=pb.RAW_FLOAT32)),
        codec.InterpolateArgs(ws=sg3_ws, num_frames=2, model="sg3",
                              render=codec.RenderArgs(translate=np.array([[0.0, 0], [0.5, 0.1], [1, 0.2]]),
                                                      rotate=np.array([0.0, 45, 90]))),
        codec.ProjectArgs(targets=[b"\x89PNG one file"]),
        codec.ProjectArgs(targets=[b"first", b"second"], space="w+", steps=50, loss="mse", seed=7, optimize_noise=False,
                          init=sg2_ws, progress_every=5, preview=True, model="m"),
        codec.ProjectArgs(targets=[b"f"], space="w", init=ws_of(SG3, 1), transform=np.diag([2.0, 2.0, 1.0]),
                          model="sg3"),
        codec.GetModelInfoArgs(),
        codec.GetModelInfoArgs("ffhq"),
        codec.ListModelsArgs(),
    ]


@pytest.mark.parametrize("args", request_cases(), ids=lambda a: type(a).__name__)
def test_encode_then_decode_gives_the_same_arguments(args):
    msg = args.to_pb()
    same(type(args).from_pb(through_the_wire(msg)), args)


def test_every_rpc_of_the_service_has_its_arguments_in_the_codec():
    methods = pb.DESCRIPTOR.services_by_name["StyleGAN"].methods
    assert sorted(codec.REQUESTS) == sorted(m.name for m in methods)
    covered = {type(args) for args in request_cases()}
    for method in methods:
        cls = codec.REQUESTS[method.name]
        assert cls in covered, method.name
        example = next(a for a in request_cases() if type(a) is cls)
        assert example.to_pb().DESCRIPTOR.name == method.input_type.name


def test_defaults_of_an_empty_message_are_the_calls_defaults():
    args = codec.GenerateArgs.from_pb(pb.GenerateRequest())
    same(args, codec.GenerateArgs())
    assert args.mapping.psi == 1.0 and args.render.noise_mode == "const" and args.render.fmt == pb.PNG
    assert args.render.quality == codec.DEFAULT_JPEG_QUALITY
    assert codec.InterpolateArgs.from_pb(pb.InterpolateRequest(num_frames=30)).space == "w"
    project = codec.ProjectArgs.from_pb(pb.ProjectRequest())
    same(project, codec.ProjectArgs())      # project()'s defaults: W, 1000 steps, lpips, seed 0, noise optimised
    assert (project.space, project.steps, project.loss, project.seed, project.optimize_noise) == \
        ("w", 1000, "lpips", 0, True)
    assert project.progress_every == 0 and not project.preview   # a bare request gets the result only


def test_a_message_holds_one_kind_of_latents():
    with pytest.raises(ValueError, match="a request holds one of seeds, z, got seeds, z"):
        codec.GenerateArgs(seeds=[1], z=floats(1, 8)).to_pb()
    with pytest.raises(ValueError, match="got z, ws"):
        codec.InterpolateArgs(z=floats(2, 8), ws=ws_of(SG2, 2)).to_pb()


@pytest.mark.parametrize("msg, message", [
    (pb.GenerateRequest(render=pb.RenderOptions(noise_mode=9)), "noise_mode: unknown value 9"),
    (pb.GenerateRequest(render=pb.RenderOptions(format=17)), "format: unknown image format 17"),
    (pb.GenerateRequest(render=pb.RenderOptions(format=pb.JPEG, jpeg_quality=101)), "quality: must be in [1, 100]"),
    (pb.GenerateRequest(z=pb.Tensor(shape=[2, 8], dtype=pb.FLOAT32, data=b"\0" * 12)),
     "z: tensor of shape [2, 8] (float32) needs 64 bytes, got 12"),
    (pb.MapRequest(map=pb.MapOptions(c=pb.Tensor(shape=[1, 3], dtype=pb.UINT8, data=b"\0" * 3))),
     "c: expected a float32 tensor, got uint8"),
    (pb.SynthesizeRequest(), "ws: expected a float32 tensor, got dtype 0"),
    (pb.MixRequest(w_a=codec.to_tensor(floats(1, 2, 8))), "w_b: expected a float32 tensor"),
    (pb.InterpolateRequest(space=7), "space: unknown value 7 (W or Z)"),
    (pb.InterpolateRequest(render=pb.RenderOptions(transform=pb.Transform(matrix=[1.0]))),
     "transform: expected 9 values"),
    (pb.ProjectRequest(space=7), "space: unknown value 7 (PROJECTION_SPACE_W or PROJECTION_SPACE_W_PLUS)"),
    (pb.ProjectRequest(init=pb.Tensor(shape=[1, 4, 8], dtype=pb.FLOAT32, data=b"\0" * 4)),
     "init: tensor of shape [1, 4, 8] (float32) needs 128 bytes, got 4"),
    (pb.ProjectRequest(transform=pb.Transform(translate=[0.5, 0.0])),
     "transform: a projection takes the input transform as its raw [3, 3] matrix"),
    (pb.GenerateRequest(edits=[pb.DirectionEdit(set="attrs", strength=1.0)]),
     "edits: entry 0 (set 'attrs') names no direction (index or name)"),
    (pb.MixRequest(w_a=codec.to_tensor(floats(1, 4, 8)), w_b=codec.to_tensor(floats(1, 4, 8)),
                   edits=[pb.DirectionEdit(set="attrs", index=1, strength=1.0),
                          pb.DirectionEdit(set="attrs", index=1, strength=2.0)]),
     "edits['attrs']: direction 1 is given twice"),
])
def test_what_only_a_message_can_get_wrong_is_a_value_error_at_decoding(msg, message):
    cls = codec.REQUESTS[type(msg).DESCRIPTOR.name.removesuffix("Request")]
    with pytest.raises(ValueError) as e:
        cls.from_pb(msg)
    assert message in str(e.value)


def test_the_arguments_themselves_are_checked_by_the_calls_definition():
    """Decoding passes bad values through; check() answers the in-process call's ValueError, word for word."""
    bad = codec.GenerateArgs.from_pb(pb.GenerateRequest(seeds=pb.SeedList(values=[1]), map=pb.MapOptions(psi=np.nan)))
    with pytest.raises(ValueError) as remote:
        bad.check(SG2)
    with pytest.raises(ValueError) as local:
        calls.Generate.check(SG2, [1], psi=np.nan)
    assert str(remote.value) == str(local.value) == "psi: must be finite, got nan"
    with pytest.raises(ValueError, match="^seeds: give seeds or z$"):
        codec.MapArgs.from_pb(pb.MapRequest()).check(SG2)
    with pytest.raises(ValueError, match=r"seeds: each seed must be in \[0, 2\*\*32\)"):
        codec.MapArgs(seeds=[-1]).check(SG2)
    with pytest.raises(ValueError, match=r"keyframes: give exactly one of seeds, z or ws \(got none\)"):
        codec.InterpolateArgs.from_pb(pb.InterpolateRequest(num_frames=3)).check(SG2)
    with pytest.raises(ValueError, match="num_frames: 9 frames in one stream, over the limit of 8"):
        codec.InterpolateArgs(seeds=[0, 1], num_frames=9).check(SG2, max_frames=8)
    with pytest.raises(ValueError, match="translate: this model"):
        codec.SynthesizeArgs(ws_of(SG2, 1), codec.RenderArgs(translate=np.array([0.1, 0]))).check(SG2)
    # Edits: decoded as sent, checked against the model's sets by the call, word for word as in process.
    for edits in ({"nope": {0: 1.0}}, {"attrs": {3: 1.0}}, {"pcs": {"pc0": np.nan}}, {"attrs": {"a": 1e9}},
                  {"attrs": {1: 1.0, "smile": 1.0}}):
        msg = codec.GenerateArgs(seeds=[1], edits=edits).to_pb()
        with pytest.raises(ValueError) as remote:
            codec.GenerateArgs.from_pb(through_the_wire(msg)).check(SG2, SETS)
        with pytest.raises(ValueError) as local:
            calls.Generate.check(SG2, [1], edits=edits, sets=SETS)
        assert str(remote.value) == str(local.value) and str(local.value).startswith("edits")
    with pytest.raises(ValueError, match=r"^edits: no direction set named 'attrs' \(this model has none\)$"):
        codec.SynthesizeArgs(ws_of(SG2, 1), edits={"attrs": {0: 1.0}}).check(SG2)
    # Project: the projection call's definition (ProjectCall, which sg.project checks with), and the server's limit.
    for kwargs in (dict(seed=2**32 - 1), dict(init=ws_of(SG2, 3)), dict(space="w", init=ws_of(SG2, 1)),
                   dict(transform=np.eye(3) * 2), dict(steps=100_001)):
        args = codec.ProjectArgs(targets=[b"a", b"b"], **kwargs)
        with pytest.raises(ValueError) as remote:
            codec.ProjectArgs.from_pb(through_the_wire(args.to_pb())).check(SG2)
        with pytest.raises(ValueError) as local:
            ProjectCall.check(SG2, 2, **kwargs)
        assert str(remote.value) == str(local.value)
    with pytest.raises(ValueError, match=r"^steps: 600 steps, over this server's limit of 500 \(--max-projection-"):
        codec.ProjectArgs(targets=[b"a"], steps=600).check(SG2, max_steps=500)
    with pytest.raises(ValueError, match="^targets: no targets given$"):
        codec.ProjectArgs().check(SG2)


# ----------------------------------------------------------------------------
# What the client plans is, decoded and checked on the server, the call the client checked


def remote(cfg: GeneratorConfig, max_seeds: int = 256, directions: dict | None = None) -> RemoteModel:
    return RemoteModel(ModelInfo.from_config(cfg), cfg, np.zeros(cfg.w_dim, np.float32), max_seeds=max_seeds,
                       max_message_bytes=64 << 20, directions=directions or {})


# Fields that differ by design: the server always computes float images (the client converts them), and
# it receives rows [N, ...] where the client may have been given one latent.
SERVER_SIDE = frozenset({"output", "single"})


def server_calls(plan_requests, cls, cfg, **limits) -> list:
    return [cls.from_pb(through_the_wire(r)).check(cfg, **limits) for r in plan_requests]


def test_generate_plans_decode_to_the_clients_call():
    for cfg, kwargs in [(SG2, dict(seeds="0-2,9", psi=0.7, cutoff=1, noise_mode="random", noise_seed=4)),
                        (COND, dict(seeds=[3, 4], c="bee", output="uint8")),
                        (COND, dict(seeds=5, c=[0.5, 0.0, 0.5], noise_mode="none", output="float")),
                        (SG3, dict(seeds=[1], translate=(0.1, 0.2), rotate=15))]:
        full = dict(psi=1.0, cutoff=None, noise_mode="const", c=None, output="pil", noise_seed=None, translate=None,
                    rotate=None, transform=None) | kwargs
        plan = planning.plan_generate(remote(cfg), "m", **full)
        client = calls.Generate.check(cfg, **full)
        [server] = server_calls(plan.requests, codec.GenerateArgs, cfg)
        same(server, client, SERVER_SIDE)
        np.testing.assert_array_equal(server.z, client.z)
        assert plan.requests[0].model == "m"
        assert plan.requests[0].render.format == (pb.RAW_FLOAT32 if client.render.output == "float" else pb.RAW_UINT8)


def test_a_split_request_decodes_to_the_rows_of_the_whole_call():
    seeds = list(range(10))
    c = np.eye(3, dtype=np.float32)[[k % 3 for k in seeds]]
    plan = planning.plan_generate(remote(COND, max_seeds=4), "", seeds, 0.8, None, "const", c, "uint8", None, None,
                                  None, None)
    client = calls.Generate.check(COND, seeds, 0.8, c=c, output="uint8")
    parts = server_calls(plan.requests, codec.GenerateArgs, COND)
    assert [p.rows for p in parts] == [4, 4, 2]
    assert sum((p.seeds for p in parts), []) == client.seeds
    np.testing.assert_array_equal(np.concatenate([p.mapping.c for p in parts]), client.mapping.c)
    assert {(p.mapping.psi, p.mapping.cutoff) for p in parts} == {(0.8, None)}


def test_map_synthesize_and_mix_plans_decode_to_the_clients_calls():
    z = floats(3, 8)
    plan = planning.plan_map(remote(COND), "", z, [2, 0, 1], 0.5, 1)
    [server] = server_calls(plan.requests, codec.MapArgs, COND)
    same(server, calls.Map.check(COND, z, [2, 0, 1], 0.5, 1), SERVER_SIDE)
    one = planning.plan_map(remote(SG2), "", z[0], None, 1.0, None)  # one z [z_dim]: sent as [1, z_dim]
    [server] = server_calls(one.requests, codec.MapArgs, SG2)
    same(server, calls.Map.check(SG2, z[0]), SERVER_SIDE)

    ws = ws_of(SG3, 2)
    for kwargs in (dict(noise_mode="const", output="float", noise_seed=None, translate=None, rotate=None,
                        transform=np.diag([1.5, 1.5, 1.0])),
                   dict(noise_mode="random", output="pil", noise_seed=8, translate=(0.0, 0.3), rotate=None,
                        transform=None)):
        plan = planning.plan_synthesize(remote(SG3), "", ws, **kwargs)
        [server] = server_calls(plan.requests, codec.SynthesizeArgs, SG3)
        same(server, calls.Synthesize.check(SG3, ws, **kwargs), SERVER_SIDE)
        plan = planning.plan_mix(remote(SG3), "", ws, ws[::-1], "0-2", **kwargs)
        [server] = server_calls(plan.requests, codec.MixArgs, SG3)
        same(server, calls.Mix.check(SG3, ws, ws[::-1], "0-2", **kwargs), SERVER_SIDE)


def test_plans_with_edits_decode_to_the_clients_calls():
    """The edits travel in the order given; the server's call adds the very vectors the client's call adds."""
    m = remote(SG2, max_seeds=2, directions=SETS)
    plan = planning.plan_generate(m, "", "0-4", 0.7, None, "const", None, "uint8", None, None, None, None, EDITS)
    client = calls.Generate.check(SG2, "0-4", 0.7, output="uint8", edits=EDITS, sets=SETS)
    parts = server_calls(plan.requests, codec.GenerateArgs, SG2, sets=SETS)
    assert [p.rows for p in parts] == [2, 2, 1]
    for server in parts:
        same(server.edits, client.edits)
    assert [(e.set, e.WhichOneof("direction"), e.strength) for e in plan.requests[0].edits] == [
        ("attrs", "name", 2.5), ("attrs", "index", -1.0), ("pcs", "name", 0.75)]
    ws = ws_of(SG2, 2)
    plan = planning.plan_synthesize(m, "", ws, "const", "float", None, None, None, None, EDITS)
    [server] = server_calls(plan.requests, codec.SynthesizeArgs, SG2, sets=SETS)
    same(server, calls.Synthesize.check(SG2, ws, edits=EDITS, sets=SETS), SERVER_SIDE)
    plan = planning.plan_mix(m, "", ws, ws[::-1], [0], "none", "pil", None, None, None, None, {"pcs": {0: 1.0}})
    [server] = server_calls(plan.requests, codec.MixArgs, SG2, sets=SETS)
    same(server, calls.Mix.check(SG2, ws, ws[::-1], [0], "none", edits={"pcs": {0: 1.0}}, sets=SETS), SERVER_SIDE)
    np.testing.assert_array_equal(server.edits.apply(server.ws)[:, 2:], server.ws[:, 2:])  # pcs: rows 0-1 only
    # a bad edit is refused by the client's own check, before any request exists
    with pytest.raises(ValueError, match=r"^edits\['attrs'\]: no direction named 'frown'"):
        planning.plan_generate(m, "", [0], 1.0, None, "const", None, "pil", None, None, None, None,
                               {"attrs": {"frown": 1.0}})
    np.testing.assert_array_equal(planning.edit(m, ws, "pcs", {"pc1": 2.0}, None),
                                  calls.Edit.check(SG2, ws, SETS["pcs"], {"pc1": 2.0}).finish())


def test_interpolate_plans_decode_to_the_clients_call():
    cases = [(SG2, dict(seeds=[0, 5, 9], num_frames=4, psi=0.7)),
             (COND, dict(z=floats(2, 8), num_frames=3, space="z", c="cat", noise_mode="random", noise_seed=3)),
             (SG3, dict(ws=ws_of(SG3, 3), num_frames=3, noise_mode="none", translate=[(0, 0), (0.5, 0), (1, 0)],
                        rotate=[0, 45, 90]))]
    for cfg, kwargs in cases:
        full = dict(seeds=None, z=None, ws=None, space="w", psi=1.0, cutoff=None, noise_mode="const", c=None,
                    output="pil", noise_seed=None, translate=None, rotate=None, transform=None) | kwargs
        req, _ = planning.plan_interpolate(remote(cfg), "", **full)
        [server] = server_calls([req], codec.InterpolateArgs, cfg, max_frames=100)
        client = calls.Interpolate.check(cfg, full.pop("seeds"), **full)
        same(server, client, SERVER_SIDE)


def test_project_plans_decode_to_the_clients_call():
    """The client prepares the targets as project() does and sends them as PNG files of the model's size; the
    server decodes the call the client checked."""
    m = dataclasses.replace(remote(SG2), info=ModelInfo.from_config(SG2, "torch", "cpu", "fp32"))
    rs = np.random.RandomState(1)
    pictures = [rs.randint(0, 256, (12, 10, 3), np.uint8), rs.randint(0, 256, (8, 8, 4), np.uint8)]
    req = planning.plan_project(m, "tiny", pictures, "w+", 20, "mse", ws_of(SG2, 1), False, 3, print, 4, None,
                                None)
    args = codec.ProjectArgs.from_pb(through_the_wire(req))
    same(args.check(SG2), ProjectCall.check(SG2, 2, "w+", 20, "mse", args.init, False, 3))
    assert (args.model, args.progress_every, args.preview) == ("tiny", 4, False)
    files = [images.decode(f) for f in args.targets]
    same(np.stack(files), planning.prepare_targets(pictures, 8, 3))     # 8 px: the model's size, prepared here
    # No callback: no progress events asked for; a preview callback asks for previews.
    assert codec.ProjectArgs.from_pb(planning.plan_project(m, "", pictures[0], "w", 5, "mse", None, True, 0, None, 3,
                                                           None, None)).progress_every == 0
    assert codec.ProjectArgs.from_pb(planning.plan_project(m, "", pictures[0], "w", 5, "mse", None, True, 0, None, 3,
                                                           print, None)).preview
    with pytest.raises(ProjectionUnavailable, match="; onnxruntime cannot differentiate$"):
        planning.plan_project(dataclasses.replace(m, info=ModelInfo.from_config(SG2, "onnxruntime")), "", pictures,
                              "w", 5, "mse", None, True, 0, None, 3, None, None)
    with pytest.raises(ValueError, match="^progress_every: must be an int >= 1, got 0$"):
        planning.plan_project(m, "", pictures, "w", 5, "mse", None, True, 0, print, 0, None, None)


def test_project_events_both_ways():
    preview = rng.randint(0, 256, (2, 8, 8, 3)).astype(np.uint8)
    event = codec.project_event_from_pb(through_the_wire(codec.project_progress_to_pb(4, 10, floats(2), preview)))
    assert (event.step, event.steps, event.losses.shape, event.losses.dtype) == (4, 10, (2,), np.float32)
    same(event.preview, preview)     # PNG: lossless
    assert codec.project_event_from_pb(codec.project_progress_to_pb(1, 2, floats(1))).preview is None
    result = Projection(ws=ws_of(SG2, 2), losses=floats(7, 2), images=preview, targets=preview[::-1].copy(),
                        loss="mse", space="w+", steps=7, seed=3, stopped=True)
    same(codec.project_event_from_pb(through_the_wire(codec.project_result_to_pb(result))), result)
    with pytest.raises(ValueError, match="^event: a ProjectEvent with neither progress nor result$"):
        codec.project_event_from_pb(pb.ProjectEvent())


# ----------------------------------------------------------------------------
# Responses: images, ws and model descriptions, both ways


def test_images_both_ways_in_every_format():
    x = floats(2, 3, 8, 8)
    u8 = images.to_uint8(x)
    got = codec.images_from_pb(through_the_wire(codec.images_to_pb(x, pb.RAW_FLOAT32)))
    same(got, x)
    same(codec.images_from_pb(through_the_wire(codec.images_to_pb(x, pb.RAW_UINT8))), u8)
    png = codec.images_from_pb(through_the_wire(codec.images_to_pb(x, pb.PNG)))
    same(np.stack([images.decode(b) for b in png]), u8)
    jpeg = codec.images_from_pb(through_the_wire(codec.images_to_pb(x, pb.JPEG, quality=70)))
    assert [images.decode(b).shape for b in jpeg] == [(8, 8, 3)] * 2 and jpeg[0][:2] == b"\xff\xd8"
    ws = ws_of(SG2, 2)
    same(codec.from_tensor(through_the_wire(codec.to_tensor(ws)), "ws"), ws)
    assert codec.from_tensor(codec.to_tensor(ws), "ws").flags.writeable


def test_model_descriptions_both_ways():
    infos = {name: ModelInfo.from_config(cfg, "onnxruntime", "cpu", "fp32")
             for name, cfg in (("sg2", SG2), ("cond", COND), ("sg3", SG3))}
    w_avg = floats(8)
    limits = pb.ServerLimits(max_seeds=4)
    msgs = [codec.model_info_to_pb(info, name, "{}", w_avg, limits) for name, info in infos.items()]
    for msg, info in zip(msgs, infos.values()):
        assert codec.model_info_from_pb(through_the_wire(msg)) == info
    listed = codec.list_models_from_pb(through_the_wire(codec.list_models_to_pb(msgs, "cond")))
    assert list(listed) == ["cond", "sg2", "sg3"]  # the default model first
    assert listed == {name: infos[name] for name in listed}
    # The direction sets travel whole: what the client gets is the server's Generator.directions.
    assert codec.direction_sets_from_pb(through_the_wire(msgs[0])) == {}
    msg = through_the_wire(codec.model_info_to_pb(infos["sg2"], "sg2", SG2.to_json(), w_avg, limits, SETS))
    got = codec.direction_sets_from_pb(msg)
    assert list(got) == list(SETS)
    for name, d in SETS.items():
        same(got[name], d)
    assert RemoteModel.from_pb(msg, 1 << 20).directions.keys() == SETS.keys()
    bad = pb.ModelInfo()
    bad.direction_sets.add().CopyFrom(codec.direction_set_to_pb("x", SETS["attrs"]))
    bad.direction_sets[0].vectors.CopyFrom(codec.to_tensor(2 * np.eye(3, 8, dtype=np.float32)))
    with pytest.raises(ValueError, match=r"^direction_sets\['x'\]: vectors: every row must have unit length"):
        codec.direction_sets_from_pb(bad)


# ----------------------------------------------------------------------------
# Dependencies


def test_the_codec_imports_without_torch():
    out = run_without_torch("import stylegan_sdk._proto.codec as codec\n"
                            "assert codec.GenerateArgs(seeds=[1]).to_pb().seeds.values == [1]\n"
                            "assert 'torch' not in sys.modules\n")
    assert out.returncode == 0, out.stderr


def test_latents_decoded_from_seeds_are_the_in_process_ones():
    """The wire's seeds for Map are made into z as `seed_to_z` makes them."""
    np.testing.assert_array_equal(codec.MapArgs(seeds=[3, 4]).check(SG2).z, latents.seed_to_z([3, 4], SG2.z_dim))

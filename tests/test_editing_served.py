"""Direction sets served with the model (issue 34): `stylegan export onnx --directions NAME=FILE` ships them in
the exported folder (listed and hash-checked in model.json, beside the style affine weights SeFa needs), and a
served model edits exactly as in process: Client.generate / synthesize / mix(..., edits=...) give the Generator's
images, Client.directions and Client.edit are the Generator's, bad edits are INVALID_ARGUMENT naming `edits` with
the in-process text, and a foreign client asks for "seed 42, sefa0 +3" in one raw request. A Triton repository
carries the sets too. The export is made once (by the command line) and the server started once, for the module."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import grpc
import numpy as np
import pytest
from conftest import build_once, nvlabs_checkpoint, stylegan_cli

import stylegan_sdk as sg
from serving import ServerSettings, serve_in_thread
from stylegan_sdk._proto import codec, pb
from stylegan_sdk.editing.directions import Directions
from stylegan_sdk.editing.weights import STYLE_AFFINES_FILE
from stylegan_sdk.formats.exported import sha256_file

TIMEOUT = 30
SETS = ("sefa", "coarse")        # every ws row (k=5); the coarse rows only (k=3)
EDITS = {"sefa": {0: 3.0, "sefa2": -2.0}, "coarse": {"1": 4.0}}


# ----------------------------------------------------------------------------
# Built once: the checkpoint, two SeFa sets, and the export that ships them


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """SHARED/onnx-sg2_skip_32-directions: skip32.safetensors, sefa.safetensors, coarse.safetensors, and exported/
    written by `stylegan export onnx skip32.safetensors --out exported --directions sefa=...
    --directions coarse=...`."""
    def build(folder: Path) -> None:
        from stylegan_sdk.export.cli import main

        folder.mkdir()
        ckpt = nvlabs_checkpoint("sg2_skip_32")
        sg.save_checkpoint(folder / "skip32.safetensors", ckpt.config, ckpt.tensors, ckpt.metadata)
        sg.sefa(folder / "skip32.safetensors", k=5).save(folder / "sefa.safetensors")
        sg.sefa(folder / "skip32.safetensors", k=3, layers="coarse").save(folder / "coarse.safetensors")
        code = main(["onnx", str(folder / "skip32.safetensors"), "--out", str(folder / "exported"),
                     *[arg for name in SETS for arg in ("--directions", f"{name}={folder / f'{name}.safetensors'}")]])
        assert code == 0

    return build_once(tmp_path_factory, "onnx-sg2_skip_32-directions", build)


@pytest.fixture(scope="module")
def folder(built) -> Path:
    return built / "exported"


@pytest.fixture(scope="module")
def G(folder):
    """The exported folder in process (ONNX Runtime), with the sets it ships."""
    return sg.load(folder)


@pytest.fixture(scope="module")
def server(folder, G_ort):
    with serve_in_thread({"edit": str(folder), "plain": G_ort}, settings=ServerSettings(max_delay_ms=5)) as bg:
        yield bg


@pytest.fixture(scope="module")
def client(server):
    with sg.Client(server.target, timeout=TIMEOUT) as C:
        yield C


def same_set(a: Directions, b: Directions, meta: bool = True) -> None:
    for name in ("vectors", "values", "mean"):
        x, y = getattr(a, name), getattr(b, name)
        assert (x is None) == (y is None), name
        if x is not None:
            assert x.dtype == y.dtype and x.shape == y.shape, name
            np.testing.assert_array_equal(x, y, err_msg=name)
    assert (a.names, a.kind, a.layers, a.model) == (b.names, b.kind, b.layers, b.model)
    if meta:
        assert a.meta == b.meta


def close_uint8(a, b) -> None:
    """uint8 images within 1 (the issue's bound; in practice equal)."""
    a, b = (np.stack([np.asarray(im) for im in x]) if isinstance(x, list) else np.asarray(x) for x in (a, b))
    assert a.dtype == b.dtype == np.uint8 and a.shape == b.shape
    assert int(np.abs(a.astype(np.int16) - b).max()) <= 1


# ----------------------------------------------------------------------------
# The export


def test_export_ships_the_sets_and_the_style_affines_listed_and_hashed(built, folder, G):
    manifest = json.loads((folder / "model.json").read_text())
    assert manifest["directions"] == {name: f"directions_{name}.safetensors" for name in SETS}
    assert manifest["style_affines"] == STYLE_AFFINES_FILE
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["mapping.onnx", "synthesis.onnx", "model.json", STYLE_AFFINES_FILE, *manifest["directions"].values()])
    for name in [*manifest["directions"].values(), STYLE_AFFINES_FILE]:
        assert manifest["files"][name]["sha256"] == sha256_file(str(folder / name))
    for name in SETS:   # shipped byte for byte, read back as sg.load_directions reads the file
        assert (folder / f"directions_{name}.safetensors").read_bytes() == (built / f"{name}.safetensors").read_bytes()
        same_set(G.directions[name], sg.load_directions(built / f"{name}.safetensors"))
    assert list(G.directions) == list(SETS)
    assert G.directions["coarse"].layers == tuple(G.info.layers_in_group("coarse"))


def test_sefa_on_the_exported_folder_is_sefa_on_its_checkpoint(built, folder):
    for kwargs in (dict(k=6), dict(k=4, layers="middle", convention="rosinality")):
        a, b = sg.sefa(folder, **kwargs), sg.sefa(built / "skip32.safetensors", **kwargs)
        same_set(a, b, meta=False)
        assert a.meta["affines"] == b.meta["affines"]


def test_tampered_directions_or_affines_are_refused(folder, tmp_path):
    for name in ("directions_sefa.safetensors", STYLE_AFFINES_FILE):
        copy = tmp_path / name
        shutil.copytree(folder, copy)
        data = bytearray((copy / name).read_bytes())
        data[-1] ^= 1                                      # one float of the tensors, not the header
        (copy / name).write_bytes(bytes(data))
        for load in (sg.load, sg.sefa):
            with pytest.raises(ValueError, match=f"{name}: sha256 does not match model.json"):
                load(copy)


def test_cli_refuses_bad_directions_in_one_line_before_touching_the_disk(built, tmp_path, capsys):
    model = built / "skip32.safetensors"
    small = Directions(vectors=np.eye(2, 8, dtype=np.float32), values=np.ones(2), names=("a", "b"), kind="sefa",
                       layers=None)
    small.save(tmp_path / "w8.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"not a direction set")
    out = tmp_path / "new" / "dir"
    sefa = built / "sefa.safetensors"
    for arg, needle in [(f"bad name={sefa}", "--directions: 'bad name' is not a direction set name"),
                        (f"../x={sefa}", "--directions: '../x' is not a direction set name"),
                        ("sefa", "--directions: expected NAME=FILE, got 'sefa'"),
                        (f"s={tmp_path / 'missing.safetensors'}", "--directions: set 's': no such direction set file"),
                        (f"s={tmp_path / 'junk.safetensors'}", "--directions: set 's': "),
                        (f"s={tmp_path / 'w8.safetensors'}", "--directions: set 's': vectors have w_dim 8, the "
                                                             "model's w_dim is 64")]:
        code, stdout, err = stylegan_cli(capsys, "export", "onnx", model, "--out", out, "--directions", arg)
        assert code == 2, (arg, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("stylegan export onnx: error: ") and needle in lines[0], err
    code, _, err = stylegan_cli(capsys, "export", "onnx", model, "--out", out, "--directions", f"s={sefa}",
                                "--directions", f"s={sefa}")
    assert code == 2 and "--directions: the set name 's' is given twice" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["junk.safetensors", "w8.safetensors"]  # nothing written


def test_export_onnx_takes_directions_objects_and_files(built):
    """The Python API: {NAME: file or Directions}; files are shipped byte for byte, a Directions as its file."""
    from stylegan_sdk.editing.directions import directions_from_bytes
    from stylegan_sdk.export.onnx import export_onnx, read_direction_sets

    cfg = sg.read_model(built / "skip32.safetensors").config
    coarse = sg.load_directions(built / "coarse.safetensors")
    sets = read_direction_sets({"file": built / "sefa.safetensors", "obj": coarse}, cfg)
    assert sets["file"] == (built / "sefa.safetensors").read_bytes()
    same_set(directions_from_bytes(sets["obj"], "obj"), coarse)
    for directions, message in [({"a b": coarse}, "directions: 'a b' is not a direction set name"),
                                ({"x": 3}, "directions: set 'x': expected a direction set file or a Directions"),
                                (["x"], "directions: expected a map")]:
        with pytest.raises(ValueError, match=message):
            export_onnx(built / "skip32.safetensors", built / "never", directions=directions)
    assert not (built / "never").exists()


# ----------------------------------------------------------------------------
# Served: the same images, sets and edits as in process


def test_client_directions_are_the_generators(client, G):
    assert list(client.directions) == list(G.directions) == list(SETS)
    for name in SETS:
        same_set(client.directions[name], G.directions[name])
    with sg.Client(client.target, model="plain", timeout=TIMEOUT) as plain:
        assert plain.directions == {}


def test_generate_with_edits_gives_the_in_process_images(client, G):
    for kwargs in (dict(), dict(psi=0.7), dict(psi=0.5, cutoff=2, noise_mode="random", noise_seed=3)):
        close_uint8(client.generate([0, 1, 42], edits=EDITS, output="uint8", **kwargs),
                    G.generate([0, 1, 42], edits=EDITS, output="uint8", **kwargs))
    close_uint8(client.generate("5-7", psi=0.7, edits={"sefa": {"sefa1": -4.5}}),
                G.generate("5-7", psi=0.7, edits={"sefa": {"sefa1": -4.5}}))
    close_uint8([client.generate(42, edits=EDITS)], [G.generate(42, edits=EDITS)])    # one image
    np.testing.assert_allclose(client.generate([3], edits=EDITS, output="float"),
                               G.generate([3], edits=EDITS, output="float"), rtol=0, atol=1e-5)
    plain = G.generate([0, 1, 42], output="uint8")
    assert np.abs(plain.astype(int) - client.generate([0, 1, 42], edits=EDITS, output="uint8")).max() > 20
    # strength 0 and no edits are the unedited images
    close_uint8(client.generate([0, 1, 42], output="uint8", edits={"sefa": {0: 0.0}}), plain)


def test_synthesize_and_mix_with_edits(client, G):
    ws = G.map(sg.seed_to_z([0, 1, 2, 3], G.info.z_dim), psi=0.7)
    np.testing.assert_allclose(client.synthesize(ws, edits=EDITS), G.synthesize(ws, edits=EDITS), rtol=0, atol=1e-5)
    close_uint8(client.synthesize(ws[1], output="uint8", edits=EDITS), G.synthesize(ws[1], output="uint8",
                                                                                    edits=EDITS))
    close_uint8(client.mix(ws[:2], ws[2:], "middle", edits=EDITS), G.mix(ws[:2], ws[2:], "middle", edits=EDITS))
    close_uint8(client.mix(ws[0], ws[1], [0, 1], output="uint8", edits={"coarse": {2: -3.0}}),
                G.mix(ws[0], ws[1], [0, 1], output="uint8", edits={"coarse": {2: -3.0}}))
    # synthesize(ws, edits) is synthesize(edit(ws)): one latent path
    edited = G.edit(ws, "sefa", {0: 3.0, "sefa2": -2.0})
    edited = G.edit(edited, "coarse", {"1": 4.0})
    np.testing.assert_allclose(client.synthesize(edited), G.synthesize(ws, edits=EDITS), rtol=0, atol=1e-5)


def test_client_edit_is_the_generators(client, G):
    ws = G.map(sg.seed_to_z([4, 5], G.info.z_dim))
    cases = [("sefa", {0: 2.5}, None), ("coarse", {"sefa0": -1.0, 2: 0.5}, None), ("sefa", {1: 1.0}, "middle"),
             (sg.load_directions(Path(G.source) / "directions_sefa.safetensors"), {"sefa4": 7.0}, [0, 7])]
    for directions, strengths, layers in cases:
        got = client.edit(ws, directions, strengths, layers)
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, G.edit(ws, directions, strengths, layers))
    np.testing.assert_array_equal(client.edit(ws[0], "sefa", {0: 1.0}), G.edit(ws[0], "sefa", {0: 1.0}))
    with pytest.raises(ValueError) as remote:
        client.edit(ws, "nope", {0: 1.0})
    with pytest.raises(ValueError) as local:
        G.edit(ws, "nope", {0: 1.0})
    assert str(remote.value) == str(local.value)


def test_async_client_edits(server, G):
    async def run():
        async with sg.AsyncClient(server.target, timeout=TIMEOUT) as C:
            images = await C.generate([0, 9], edits=EDITS, output="uint8")
            sets = await C.get_directions()
            ws = G.map(sg.seed_to_z([1], G.info.z_dim))
            return images, sets, C.directions, await C.edit(ws, "coarse", {0: 2.0}), \
                await C.synthesize(ws, edits=EDITS), await C.mix(ws, ws[::-1], "coarse", edits=EDITS,
                                                                 output="uint8"), ws

    images, sets, cached, edited, x, mixed, ws = asyncio.run(run())
    close_uint8(images, G.generate([0, 9], edits=EDITS, output="uint8"))
    assert list(sets) == list(cached) == list(SETS)
    same_set(sets["coarse"], G.directions["coarse"])
    np.testing.assert_array_equal(edited, G.edit(ws, "coarse", {0: 2.0}))
    np.testing.assert_allclose(x, G.synthesize(ws, edits=EDITS), rtol=0, atol=1e-5)
    close_uint8(mixed, G.mix(ws, ws[::-1], "coarse", edits=EDITS, output="uint8"))


BAD_EDITS = [
    ({"nope": {0: 1.0}}, "edits: no direction set named 'nope' (this model has 'sefa', 'coarse')"),
    ({"sefa": {5: 1.0}}, "edits['sefa']: direction 5 is out of range (this set has 5: 0-4)"),
    ({"sefa": {"smile": 1.0}}, "edits['sefa']: no direction named 'smile'"),
    ({"sefa": {0: float("nan")}}, "edits['sefa']: the strength of 0 must be finite and at most 1000 in size, got nan"),
    ({"coarse": {1: 1e9}}, "edits['coarse']: the strength of 1 must be finite"),
    ({"sefa": {0: 1.0, "sefa0": 2.0}}, "edits['sefa']: direction 0 ('sefa0') is given twice"),
]


@pytest.mark.parametrize("edits, message", BAD_EDITS)
def test_bad_edits_are_invalid_argument_with_the_in_process_text(client, stub, G, edits, message):
    with pytest.raises(ValueError) as local:
        G.generate([0], edits=edits)
    assert message in str(local.value)
    with pytest.raises(ValueError) as remote:            # the client checks before sending
        client.generate([0], edits=edits)
    assert str(remote.value) == str(local.value)
    ws = codec.to_tensor(G.map(sg.seed_to_z([0], G.info.z_dim)))
    for method, request in [("Generate", pb.GenerateRequest(seeds=pb.SeedList(values=[0]))),
                            ("Synthesize", pb.SynthesizeRequest(ws=ws)),
                            ("Mix", pb.MixRequest(w_a=ws, w_b=ws, layers=[0]))]:
        request.model = "edit"
        request.edits.extend(codec.edits_to_pb(edits))   # what a client that does not check would send
        with pytest.raises(grpc.RpcError) as e:
            getattr(stub, method)(request, timeout=TIMEOUT)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert e.value.details() == str(local.value), method
    close_uint8(client.generate([0], output="uint8"), G.generate([0], output="uint8"))   # still serving


def test_edits_on_a_model_without_sets_and_malformed_entries(stub, G_ort):
    with pytest.raises(grpc.RpcError) as e:
        stub.Generate(pb.GenerateRequest(model="plain", seeds=pb.SeedList(values=[0]),
                                         edits=[pb.DirectionEdit(set="sefa", index=0, strength=1.0)]), timeout=TIMEOUT)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert e.value.details() == "edits: no direction set named 'sefa' (this model has none)"
    for edits, message in [([pb.DirectionEdit(set="sefa", strength=1.0)],
                            "edits: entry 0 (set 'sefa') names no direction (index or name)"),
                           ([pb.DirectionEdit(set="sefa", name="sefa1", strength=1.0),
                             pb.DirectionEdit(set="sefa", name="sefa1", strength=2.0)],
                            "edits['sefa']: direction 'sefa1' is given twice")]:
        with pytest.raises(grpc.RpcError) as e:
            stub.Generate(pb.GenerateRequest(model="edit", seeds=pb.SeedList(values=[0]), edits=edits),
                          timeout=TIMEOUT)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and e.value.details() == message


def test_a_foreign_client_asks_for_seed_42_with_an_edit_in_one_request(stub, G):
    """Only the generated stubs: no SDK planning, no codec."""
    request = pb.GenerateRequest(model="edit", seeds=pb.SeedList(values=[42]),
                                 render=pb.RenderOptions(format=pb.RAW_UINT8), return_ws=True,
                                 edits=[pb.DirectionEdit(set="sefa", name="sefa0", strength=3.0),
                                        pb.DirectionEdit(set="coarse", index=1, strength=-2.0)])
    response = stub.Generate(request, timeout=TIMEOUT)
    pixels = np.frombuffer(response.images.pixels.data, np.uint8).reshape(response.images.pixels.shape)
    edits = {"sefa": {"sefa0": 3.0}, "coarse": {1: -2.0}}
    close_uint8(pixels, G.generate([42], edits=edits, output="uint8"))
    ws = np.frombuffer(response.ws.data, np.float32).reshape(response.ws.shape)   # the ws it rendered: edited
    expected = G.edit(G.edit(G.map(sg.seed_to_z([42], G.info.z_dim)), "sefa", {"sefa0": 3.0}), "coarse", {1: -2.0})
    np.testing.assert_allclose(ws, expected, rtol=0, atol=1e-5)
    info = stub.GetModelInfo(pb.GetModelInfoRequest(model="edit"), timeout=TIMEOUT)
    listed = {s.name: (s.kind, list(s.direction_names), list(s.layers), list(s.vectors.shape))
              for s in info.direction_sets}
    assert listed == {"sefa": ("sefa", [f"sefa{i}" for i in range(5)], [], [5, G.info.w_dim]),
                      "coarse": ("sefa", ["sefa0", "sefa1", "sefa2"], [0, 1, 2, 3], [3, G.info.w_dim])}
    assert json.loads(info.direction_sets[0].model_json) == G.directions["sefa"].model


# ----------------------------------------------------------------------------
# Triton: the repository carries the sets; a triton:// model edits like the folder


def test_triton_repository_ships_the_sets_in_the_synthesis_config(folder, G, tmp_path, skip32_dir):
    text_format = pytest.importorskip("google.protobuf.text_format")
    model_config_pb2 = pytest.importorskip("tritonclient.grpc.model_config_pb2")
    from stylegan_sdk.export.triton import write_repository
    from stylegan_sdk.formats.triton import DIRECTIONS_PARAMETER, PARAMETER, read_directions_parameter

    write_repository(folder, tmp_path / "repo", name="edit")
    configs = {graph: text_format.Parse((tmp_path / "repo" / f"edit_{graph}" / "config.pbtxt").read_text(),
                                        model_config_pb2.ModelConfig()) for graph in ("mapping", "synthesis")}
    assert set(configs["mapping"].parameters) == {PARAMETER}
    assert set(configs["synthesis"].parameters) == {PARAMETER, DIRECTIONS_PARAMETER}
    sets = read_directions_parameter(configs["synthesis"].parameters[DIRECTIONS_PARAMETER].string_value, "test")
    assert list(sets) == list(SETS)
    for name in SETS:
        same_set(sets[name], G.directions[name])
    # a folder without sets writes no such parameter
    write_repository(skip32_dir, tmp_path / "repo", name="plain")
    assert DIRECTIONS_PARAMETER not in (tmp_path / "repo" / "plain_synthesis" / "config.pbtxt").read_text()


def test_triton_model_edits_like_the_folder(folder, G, tmp_path):
    pytest.importorskip("tritonclient.grpc")
    import triton_server

    if triton_server.missing():
        pytest.skip(f"the real Triton server cannot run here: {triton_server.missing()}")
    from stylegan_sdk.export.triton import write_repository

    write_repository(folder, tmp_path / "exported", name="edit", max_batch=4, device="cpu")
    repo = triton_server.python_backend_copy(tmp_path / "exported", tmp_path / "repo")
    with triton_server.tritonserver(repo, tmp_path) as (port, _log):
        remote = sg.load(f"triton://127.0.0.1:{port}/edit")
        assert list(remote.directions) == list(SETS)
        for name in SETS:
            same_set(remote.directions[name], G.directions[name])
        close_uint8(remote.generate([0, 42], edits=EDITS, output="uint8"),
                    G.generate([0, 42], edits=EDITS, output="uint8"))
        remote.close()

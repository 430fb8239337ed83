"""stylegan_sdk.models.filtered_lrelu: the op against a literal transcription of the official reference,
the filter design against scipy and the official fixture's filters, ONNX export with a dynamic batch."""

from __future__ import annotations

import json
import math
import os
import time
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from stylegan_sdk.models.filtered_lrelu import (
    design_lowpass_filter,
    filtered_lrelu,
    filtered_lrelu_ref,
    output_size,
)

# The official generator's fixtures: in tests/fixtures, else in the shared checkout next to the repo.
FIXTURES = next((p for p in (os.path.join(os.path.dirname(__file__), "fixtures", "nvlabs-stylegan3"),
                             os.path.join(os.path.dirname(__file__), "..", "..", "shared", "fixtures",
                                          "nvlabs-stylegan3"))
                 if os.path.isdir(p)), "")
FIXTURE_CONFIGS = ["sg3t_32", "sg3r_32_cond"]
TOL = 1e-5


# ----------------------------------------------------------------------------
# Literal transcription of the official reference computation (float64, shares no code with the module)


def literal_filtered_lrelu(x, fu, fd, b, up, down, padding, gain, slope, clamp, flip_filter):
    """bias -> zero insertion -> pad/crop -> full 2-D FIR * up**2 -> lrelu * gain -> clamp -> 2-D FIR -> [::down]."""
    x = x.double()
    n, c, h, w = x.shape
    px0, px1, py0, py1 = padding
    if b is not None:
        x = x + b.double()[None, :, None, None]
    # Zero insertion: each sample followed by up-1 zeros, along H and W.
    z = torch.zeros(n, c, h * up, w * up, dtype=torch.float64)
    z[:, :, ::up, ::up] = x
    # Pad with zeros, then crop for negative padding.
    z = F.pad(z, [max(px0, 0), max(px1, 0), max(py0, 0), max(py1, 0)])
    z = z[:, :, max(-py0, 0): z.shape[2] - max(-py1, 0), max(-px0, 0): z.shape[3] - max(-px1, 0)]
    z = fir2d_literal(z, fu, up ** 2, flip_filter)
    z = torch.where(z >= 0, z, z * slope) * gain
    if clamp is not None:
        z = z.clamp(-clamp, clamp)
    z = fir2d_literal(z, fd, 1.0, flip_filter)
    return z[:, :, ::down, ::down]


def fir2d_literal(x, f, gain, flip_filter):
    """Valid 2-D depthwise convolution (correlation if flip_filter) with f (1-D: its outer product) * gain."""
    if f is None:
        return x * gain
    f = f.double()
    f2 = torch.outer(f, f) if f.ndim == 1 else f
    f2 = f2 * gain
    if not flip_filter:
        f2 = f2.flip([0, 1])  # conv2d correlates; a convolution flips the kernel
    c = x.shape[1]
    return F.conv2d(x, f2[None, None].repeat(c, 1, 1, 1), groups=c)


def official_out_size(in_h, in_w, fu, fd, up, down, padding):
    px0, px1, py0, py1 = padding
    fu_w, fu_h = (1, 1) if fu is None else (fu.shape[-1], fu.shape[0])
    fd_w, fd_h = (1, 1) if fd is None else (fd.shape[-1], fd.shape[0])
    out_w = (in_w * up + (px0 + px1) - (fu_w - 1) - (fd_w - 1) + (down - 1)) // down
    out_h = (in_h * up + (py0 + py1) - (fu_h - 1) - (fd_h - 1) + (down - 1)) // down
    return out_h, out_w


def sg3_padding(in_size, out_size, conv_kernel, up, down, up_taps, down_taps):
    """SynthesisLayer's padding for a square layer (symmetric interpretation)."""
    total = (out_size - 1) * down + 1 - (in_size + conv_kernel - 1) * up + up_taps + down_taps - 2
    lo = (total + up) // 2
    return [lo, total - lo, lo, total - lo]


# ----------------------------------------------------------------------------
# Cases


def _sep(taps, cutoff, width, fs):
    return design_lowpass_filter(taps, cutoff, width, fs)


def _radial(taps, cutoff, width, fs):
    return design_lowpass_filter(taps, cutoff, width, fs, radial=True)


def _rand(shape, seed):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def _unit_l1(f):
    """A random filter scaled like a low-pass one: sum |f| = 1 (1-D: per pass)."""
    return f / f.abs().sum()


def _cases():
    """(id, kwargs for the op, input shape)."""
    cases = []
    # StyleGAN3-like layers: in/out sizes, 3x3 or 1x1 conv, up 2 or 4, down 2, designed filters.
    for name, n, c, size_in, size_out, ck, up, down, radial, clamp in [
        ("t_up2_down2", 1, 4, 20, 20, 3, 2, 2, False, None),
        ("t_up2_down2_b3", 3, 5, 14, 14, 3, 2, 2, False, 0.5),
        ("t_up4_down2", 1, 3, 12, 20, 3, 4, 2, False, None),
        ("r_up2_down2", 3, 6, 18, 18, 1, 2, 2, True, None),
        ("r_up4_down2", 1, 8, 10, 18, 1, 4, 2, True, 0.3),
        ("t_crop", 1, 4, 26, 16, 3, 2, 2, False, None),  # negative padding (like the last critical layer)
    ]:
        fs = 2.0 * size_in * up / 2
        fu = _sep(6 * up, fs / (4 * up), fs / (3 * up), fs)
        fd = (_radial if radial else _sep)(6 * down, fs / (4 * up) * 1.2, fs / (4 * up), fs)
        pad = sg3_padding(size_in, size_out, ck, up, down, 6 * up, 6 * down)
        kw = dict(fu=fu, fd=fd, b=_rand([c], 1), up=up, down=down, padding=pad, gain=math.sqrt(2), slope=0.2,
                  clamp=clamp)
        for flip in (False, True):
            cases.append((f"{name}_flip{int(flip)}", dict(kw, flip_filter=flip), (n, c, size_in + ck - 1,
                                                                                size_in + ck - 1)))
    # Asymmetric (random) filters, so that flip_filter matters; odd and even taps; 2-D fu; asymmetric padding.
    for name, n, c, hw, fu_shape, fd_shape, up, down, pad, gain, slope, clamp in [
        ("rand_sep", 3, 3, (13, 17), [7], [5], 2, 2, [3, -1, 5, 2], 1.7, 0.1, None),
        ("rand_2d_fu", 1, 4, (11, 15), [5, 6], [4], 2, 1, [4, 0, 2, 3], 1.0, 0.3, 0.8),
        ("rand_2d_both", 3, 5, (16, 12), [6, 6], [5, 3], 4, 2, [-3, 2, 1, -2], math.sqrt(2), 0.2, None),
        ("rand_up1_down2", 1, 7, (21, 19), [5], [6], 1, 2, [2, 3, 0, 4], 2.0, 0.2, 1.0),
        ("rand_up1_down1", 3, 3, (10, 10), [3], [4, 4], 1, 1, 1, 1.0, 0.0, None),
        ("rand_up4_down1", 1, 3, (10, 12), [9], [4], 4, 1, [2, 1], 0.5, 0.25, None),
        ("fu_none_up2", 1, 4, (12, 12), None, [8], 2, 2, [3, 4, 3, 4], math.sqrt(2), 0.2, None),
        ("fd_none_down2", 3, 3, (15, 11), [8], None, 2, 2, [-1, 0, 2, 1], math.sqrt(2), 0.2, None),
        ("torgb_identity", 3, 3, (16, 16), None, None, 1, 1, 0, 1.0, 1.0, 0.4),
        ("no_bias", 1, 6, (20, 20), [6], [6, 6], 2, 2, 5, math.sqrt(2), 0.2, None),
    ]:
        fu = None if fu_shape is None else _unit_l1(_rand(fu_shape, 2))
        fd = None if fd_shape is None else _unit_l1(_rand(fd_shape, 3))
        b = None if name == "no_bias" else _rand([c], 4)
        kw = dict(fu=fu, fd=fd, b=b, up=up, down=down, padding=pad, gain=gain, slope=slope, clamp=clamp)
        for flip in (False, True):
            cases.append((f"{name}_flip{int(flip)}", dict(kw, flip_filter=flip), (n, c) + hw))
    return cases


CASES = _cases()
MAX_ERR: dict[str, float] = {}


def _pad4(padding):
    if isinstance(padding, int):
        return [padding] * 4
    if len(padding) == 2:
        return [padding[0], padding[0], padding[1], padding[1]]
    return list(padding)


@pytest.mark.parametrize("impl", ["ref", "fast"])
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_matches_literal_reference(case, impl):
    _, kw, shape = case
    x = _rand(shape, 0) * 2
    fn = filtered_lrelu_ref if impl == "ref" else filtered_lrelu
    y = fn(x, **kw)
    pad = _pad4(kw["padding"])
    expect = literal_filtered_lrelu(x, kw["fu"], kw["fd"], kw["b"], kw["up"], kw["down"], pad, kw["gain"],
                                    kw["slope"], kw["clamp"], kw["flip_filter"])
    want_shape = (shape[0], shape[1]) + official_out_size(shape[2], shape[3], kw["fu"], kw["fd"], kw["up"],
                                                          kw["down"], pad)
    assert tuple(y.shape) == want_shape == tuple(expect.shape)
    assert output_size(shape[2], shape[3], kw["fu"], kw["fd"], kw["up"], kw["down"], kw["padding"]) == want_shape[2:]
    assert y.dtype == torch.float32
    err = (y.double() - expect).abs().max().item()
    MAX_ERR[impl] = max(MAX_ERR.get(impl, 0.0), err)
    assert err <= TOL, f"{impl}: max abs error {err:.3g}"


def test_clamp_is_exercised():
    """The clamp cases really clip something (else the comparison would not test clamping)."""
    _, kw, shape = next(c for c in CASES if c[0] == "t_up2_down2_b3_flip0")
    x = _rand(shape, 0) * 2
    unclamped = filtered_lrelu(x, **dict(kw, clamp=None))
    assert (unclamped.abs() > kw["clamp"]).float().mean().item() > 0.01


def test_fast_matches_ref_and_grad():
    """The two code paths agree and both are differentiable w.r.t. x and b."""
    fu = design_lowpass_filter(12, 4.0, 8.0, 32.0)
    fd = design_lowpass_filter(12, 5.0, 6.0, 32.0, radial=True)
    kw = dict(fu=fu, fd=fd, up=2, down=2, padding=[11, 10, 11, 10], clamp=1.5)
    grads = []
    for fn in (filtered_lrelu_ref, filtered_lrelu):
        x = _rand([2, 4, 18, 18], 5).requires_grad_(True)
        b = _rand([4], 6).requires_grad_(True)
        y = fn(x, b=b, **kw)
        (y * _rand(y.shape, 7)).sum().backward()
        grads.append((y.detach(), x.grad, b.grad))
    for a, r in zip(grads[0], grads[1]):  # y, dx, db (db sums ~1e3 terms: relative)
        assert (a - r).abs().max().item() <= TOL * max(1.0, r.abs().max().item())


@pytest.mark.parametrize("bad, match", [
    (dict(up=0), "up"), (dict(down=1.5), "down"), (dict(padding=[1, 2, 3]), "padding"),
    (dict(b=torch.zeros(3)), "b"), (dict(fu=torch.zeros(2, 2, 2)), "fu"), (dict(gain=0), "gain"),
    (dict(slope=-1), "slope"), (dict(clamp=-1), "clamp"), (dict(padding=-20), "padding"),
])
def test_bad_arguments(bad, match):
    x = torch.zeros(1, 4, 8, 8)
    for fn in (filtered_lrelu, filtered_lrelu_ref):
        with pytest.raises(ValueError, match=match):
            fn(x, **dict(dict(fu=torch.ones(4), fd=torch.ones(4), up=2, down=2, padding=3), **bad))


# ----------------------------------------------------------------------------
# Filter design


def _official_design(numtaps, cutoff, width, fs, radial):
    """The official SynthesisLayer.design_lowpass_filter, on scipy, in float64."""
    scipy_signal = pytest.importorskip("scipy.signal")
    scipy_special = pytest.importorskip("scipy.special")
    if not radial:
        return scipy_signal.firwin(numtaps=numtaps, cutoff=cutoff, width=width, fs=fs)
    t = (np.arange(numtaps) - (numtaps - 1) / 2) / fs
    r = np.hypot(*np.meshgrid(t, t))
    f = scipy_special.j1(2 * cutoff * (np.pi * r)) / (np.pi * r)
    beta = scipy_signal.kaiser_beta(scipy_signal.kaiser_atten(numtaps, width / (fs / 2)))
    w = np.kaiser(numtaps, beta)
    f = f * np.outer(w, w)
    return f / np.sum(f)


def _fixture_layers():
    """(config, layer dict, state dict) for every layer with filters, or [] without the fixtures."""
    out = []
    for name in FIXTURE_CONFIGS:
        folder = os.path.join(FIXTURES, name)
        if not os.path.isfile(os.path.join(folder, "config.json")):
            continue
        with open(os.path.join(folder, "config.json")) as fh:
            layers = [lay for lay in json.load(fh)["layers"] if "up_taps" in lay]
        out.append((name, layers, dict(np.load(os.path.join(folder, "G_state_dict.npz")))))
    return out


def _layer_filters(layer):
    """(kind, design arguments) for a layer's up and down filters, as SynthesisLayer designs them."""
    fs = layer["tmp_sampling_rate"]
    return [
        ("up", dict(numtaps=layer["up_taps"], cutoff=layer["in_cutoff"], width=layer["in_half_width"] * 2,
                    fs=fs, radial=False)),
        ("down", dict(numtaps=layer["down_taps"], cutoff=layer["out_cutoff"], width=layer["out_half_width"] * 2,
                      fs=fs, radial=layer["down_radial"])),
    ]


def _schedule_cases():
    """Design arguments from StyleGAN3's layer schedule (the fixture configs, or a 256-px schedule)."""
    cases = []
    for _, layers, _ in _fixture_layers():
        for layer in layers:
            cases += [args for _, args in _layer_filters(layer) if args["numtaps"] > 1]
    # The official schedule for 256 px (SynthesisNetwork defaults), up/down factors 2 and 4.
    res, n_layers, n_crit = 256, 14, 2
    exps = np.minimum(np.arange(n_layers + 1) / (n_layers - n_crit), 1)
    cutoffs = 2 * (res / 2 / 2) ** exps
    stops = 2 ** 2.1 * (res / 2 * 2 ** 0.3 / 2 ** 2.1) ** exps
    rates = np.exp2(np.ceil(np.log2(np.minimum(stops * 2, res))))
    halfw = np.maximum(stops, rates / 2) - cutoffs
    for i in range(n_layers):
        prev = max(i - 1, 0)
        tmp = max(rates[prev], rates[i]) * 2
        up, down = int(tmp / rates[prev]), int(tmp / rates[i])
        cases.append(dict(numtaps=6 * up, cutoff=cutoffs[prev], width=halfw[prev] * 2, fs=tmp, radial=False))
        for radial in (False, True):
            cases.append(dict(numtaps=6 * down, cutoff=cutoffs[i], width=halfw[i] * 2, fs=tmp, radial=radial))
    return cases


SCHEDULE = _schedule_cases()


@pytest.mark.parametrize("args", SCHEDULE, ids=[f"{a['numtaps']}_{a['cutoff']:.3f}_{a['fs']:g}_{int(a['radial'])}"
                                                for a in SCHEDULE])
def test_design_matches_scipy(args):
    expect = _official_design(**args)
    f = design_lowpass_filter(**args)
    assert f is not None and f.dtype == torch.float32 and tuple(f.shape) == expect.shape
    assert np.abs(f.double().numpy() - expect).max() <= 1e-6
    assert abs(f.double().sum().item() - 1) <= 1e-5


def test_design_odd_and_generic():
    """Odd tap counts (radial centre at r = 0 takes the jinc's limit) and firwin for other parameters."""
    pytest.importorskip("scipy.signal")
    for numtaps, cutoff, width, fs in [(7, 3.0, 2.0, 16.0), (13, 0.1, 0.05, 1.0), (6, 10.0, 30.0, 64.0)]:
        f = design_lowpass_filter(numtaps, cutoff, width, fs)
        assert np.abs(f.double().numpy() - _official_design(numtaps, cutoff, width, fs, False)).max() <= 1e-6
        g = design_lowpass_filter(numtaps, cutoff, width, fs, radial=True)
        assert torch.isfinite(g).all() and abs(g.double().sum().item() - 1) <= 1e-5
        if numtaps % 2 == 0:
            assert np.abs(g.double().numpy() - _official_design(numtaps, cutoff, width, fs, True)).max() <= 1e-6
    assert design_lowpass_filter(1, 4.0, 8.0, 32.0) is None
    assert design_lowpass_filter(1, 4.0, 8.0, 32.0, radial=True) is None


@pytest.mark.parametrize("args, match", [
    (dict(numtaps=0), "numtaps"), (dict(cutoff=16.0), "cutoff"), (dict(cutoff=0.0), "cutoff"),
    (dict(width=0.0), "width"), (dict(fs=-1.0), "fs"),
])
def test_design_bad_arguments(args, match):
    with pytest.raises(ValueError, match=match):
        design_lowpass_filter(**dict(dict(numtaps=12, cutoff=4.0, width=8.0, fs=32.0), **args))


def test_design_matches_fixture_filters():
    """The designed filters equal the official generator's stored up_filter / down_filter buffers."""
    fixtures = _fixture_layers()
    if not fixtures:
        pytest.skip("no nvlabs-stylegan3 fixtures")
    checked = 0
    for cfg, layers, state in fixtures:
        for layer in layers:
            for kind, args in _layer_filters(layer):
                key = f"synthesis.{layer['name']}.{kind}_filter"
                f = design_lowpass_filter(**args)
                if f is None:
                    assert key not in state, key
                    continue
                assert tuple(f.shape) == state[key].shape, key
                assert np.abs(f.numpy() - state[key]).max() <= 1e-6, f"{cfg}: {key}"
                checked += 1
    assert checked >= 40


def test_fixture_layers_shapes_and_values():
    """Every layer of the official fixtures (its stored filters, padding, gain, slope, clamp): output size
    out_size, and both code paths equal the literal reference."""
    fixtures = _fixture_layers()
    if not fixtures:
        pytest.skip("no nvlabs-stylegan3 fixtures")
    for cfg, layers, state in fixtures:
        for i, layer in enumerate(layers):
            fu, fd = (state.get(f"synthesis.{layer['name']}.{k}_filter") for k in ("up", "down"))
            fu, fd = (None if f is None else torch.from_numpy(f) for f in (fu, fd))
            torgb = layer["is_torgb"]
            n_in = layer["in_size"][0] + layer["conv_kernel"] - 1
            x = _rand([1, 3, n_in, n_in], 20 + i)
            kw = dict(fu=fu, fd=fd, b=_rand([3], 40 + i), up=layer["up_factor"], down=layer["down_factor"],
                      padding=layer["padding"], gain=1.0 if torgb else math.sqrt(2), slope=1.0 if torgb else 0.2,
                      clamp=layer["conv_clamp"])
            expect = literal_filtered_lrelu(x, fu, fd, kw["b"], kw["up"], kw["down"], kw["padding"], kw["gain"],
                                            kw["slope"], kw["clamp"], False)
            assert tuple(expect.shape[2:]) == tuple(layer["out_size"][::-1]), f"{cfg} {layer['name']}"
            for fn in (filtered_lrelu, filtered_lrelu_ref):
                err = (fn(x, **kw).double() - expect).abs().max().item()
                assert err <= TOL, f"{cfg} {layer['name']} {fn.__name__}: {err:.3g}"


# ----------------------------------------------------------------------------
# ONNX export


class _Layer(torch.nn.Module):
    """A filtered_lrelu with buffers for filters and a bias, as a StyleGAN3 layer holds them."""

    def __init__(self, channels: int, up: int, down: int, radial: bool | None, padding: list[int],
                 gain: float = math.sqrt(2), slope: float = 0.2, clamp: float | None = 2.0) -> None:
        super().__init__()
        fs = 16.0 * max(up, down)
        no_filters = radial is None  # ToRGB: no filters
        self.register_buffer("fu", None if no_filters else design_lowpass_filter(6 * up, 2.5, 9.0, fs))
        self.register_buffer("fd", None if no_filters else design_lowpass_filter(6 * down, 3.0, 8.0, fs,
                                                                                 radial=radial))
        self.bias = torch.nn.Parameter(_rand([channels], 8))
        self.kw = dict(up=up, down=down, padding=padding, gain=gain, slope=slope, clamp=clamp)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return filtered_lrelu(x, fu=self.fu, fd=self.fd, b=self.bias, **self.kw)


ONNX_CASES = {
    "separable": dict(up=2, down=2, radial=False, padding=[11, 10, 11, 10]),
    "radial": dict(up=2, down=2, radial=True, padding=[11, 10, 11, 10]),
    "up4_crop_radial": dict(up=4, down=2, radial=True, padding=[-2, -5, -2, -5]),  # Slice
    "extra_pad": dict(up=2, down=2, radial=False, padding=[14, 9, 12, 13], clamp=None),  # Pad
    "torgb": dict(up=1, down=1, radial=None, padding=0, gain=1.0, slope=1.0, clamp=2.0),
}


@pytest.mark.parametrize("name", list(ONNX_CASES))
def test_onnx_export_dynamic_batch(tmp_path, name):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxscript")
    ort = pytest.importorskip("onnxruntime")
    import onnx

    from stylegan_sdk.export.onnx import DEFAULT_OPSET, TENSORRT_OPS

    channels, size = 6, 20
    module = _Layer(channels, **ONNX_CASES[name]).eval()
    path = str(tmp_path / "flrelu.onnx")
    batch = torch.export.Dim("batch", min=1, max=4096)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.export internals
        program = torch.onnx.export(module, (_rand([2, channels, size, size], 9),), input_names=["x"],
                                    output_names=["y"], dynamic_shapes=({0: batch},), dynamo=True,
                                    opset_version=DEFAULT_OPSET, verbose=False, optimize=True)
    program.save(path)

    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    ops = sorted({node.op_type for node in model.graph.node})
    print(f"\nexported ops ({name}): {ops}")
    assert set(ops) <= TENSORRT_OPS, sorted(set(ops) - TENSORRT_OPS)
    initializers = {init.name for init in model.graph.initializer}
    constants = {out for node in model.graph.node if node.op_type == "Constant" for out in node.output}
    static = initializers | constants
    for node in model.graph.node:
        if node.op_type in ("Conv", "ConvTranspose"):  # weight (and bias) stored, not computed
            assert all(i in static for i in node.input[1:] if i), f"{node.op_type} {node.name}: computed weight"
        if node.op_type in ("Pad", "Slice", "Clip"):  # pads, starts/ends/axes/steps, bounds: constants
            assert all(i in static for i in node.input[1:] if i), f"{node.op_type} {node.name}: computed input"
    dim0 = model.graph.input[0].type.tensor_type.shape.dim[0]
    assert dim0.dim_param and not dim0.HasField("dim_value"), "batch axis is not dynamic"

    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    for n in (1, 5):
        x = _rand([n, channels, size, size], 10 + n)
        with torch.no_grad():
            expect = module(x).numpy()
        (got,) = session.run(None, {"x": x.numpy()})
        assert got.shape == expect.shape
        assert np.abs(got - expect).max() <= TOL


# ----------------------------------------------------------------------------
# Speed (printed, not asserted)


def _best_time(fn, repeats: int = 3) -> float:
    fn()
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def test_speed_print():
    """A 256-px-like layer: N=1, C=128, 148x148 in, up 2, down 2, 12-tap filters (separable and radial)."""
    fu = design_lowpass_filter(12, 16.0, 20.0, 128.0)
    for radial in (False, True):
        fd = design_lowpass_filter(12, 20.0, 16.0, 128.0, radial=radial)
        x = _rand([1, 128, 148, 148], 11)
        kw = dict(fu=fu, fd=fd, b=_rand([128], 12), up=2, down=2, padding=[11, 10, 11, 10], clamp=256.0)
        with torch.no_grad():
            t_ref = _best_time(lambda: filtered_lrelu_ref(x, **kw))  # noqa: B023
            t_fast = _best_time(lambda: filtered_lrelu(x, **kw))  # noqa: B023
        print(f"\nfiltered_lrelu 1x128x148x148 up2 down2 {'radial' if radial else 'separable'} fd: "
              f"ref {t_ref * 1e3:.1f} ms, fast {t_fast * 1e3:.1f} ms ({t_ref / t_fast:.1f}x), "
              f"torch threads {torch.get_num_threads()}")
    print(f"max abs errors vs literal reference so far: {MAX_ERR}")

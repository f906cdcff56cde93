"""Resampling ops on every backend against the reference: interpolate (nearest, bilinear),
pixel_shuffle / pixel_unshuffle, unfold / fold, grid_sample; forward and backward on odd shapes,
each cpu ISA copy, float64 gradcheck, hypothesis over sizes, bad input, modules.

Tolerances. Interpolation and grid sampling compute a source coordinate whose size is up to the
image size S, so rounding it in the working dtype moves the result by about S * eps * |x|; the
float32-vs-float64 comparisons therefore pass reduction=S**2 (sqrt(reduction) = S). Against torch
in the same dtype the conventions are reproduced exactly and the default tolerance applies."""
import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st

import fastcnn
from fastcnn import ops
from fastcnn.contracts import kernels
from helpers import assert_close, backend_params, gradcheck, isa  # noqa: F401

DTYPES = [torch.float32, torch.float64]

# (input shape, interpolate kwargs): odd sizes, non-integer factors up and down, batch 1, one channel.
INTERP_CASES = [
    ((2, 3, 5, 7), dict(scale_factor=2)),
    ((2, 3, 5, 7), dict(scale_factor=1.7)),
    ((2, 3, 5, 7), dict(scale_factor=0.6)),
    ((1, 1, 7, 9), dict(size=(11, 4))),
    ((1, 2, 4, 4), dict(scale_factor=(2.5, 1.0))),
    ((2, 3, 5, 7), dict(scale_factor=2, mode="bilinear", align_corners=False)),
    ((2, 3, 5, 7), dict(scale_factor=2, mode="bilinear", align_corners=True)),
    ((2, 3, 5, 7), dict(scale_factor=1.7, mode="bilinear")),
    ((2, 3, 5, 7), dict(scale_factor=0.6, mode="bilinear", align_corners=True)),
    ((1, 1, 9, 6), dict(scale_factor=(0.6, 2.3), mode="bilinear")),
    ((1, 2, 6, 5), dict(size=(9, 13), mode="bilinear", align_corners=True)),
    ((1, 2, 6, 5), dict(size=(1, 1), mode="bilinear", align_corners=True)),
    ((1, 2, 6, 5), dict(size=(4, 1), mode="bilinear", align_corners=False)),
    ((1, 3, 5, 5), dict(scale_factor=1.7, mode="bilinear", recompute_scale_factor=True)),
    ((2, 1, 3, 3), dict(scale_factor=1.3, mode="bilinear")),  # output size == input size: a copy in torch
]
CASE_IDS = [f"{s}-{'-'.join(f'{k}={v}' for k, v in kw.items())}" for s, kw in INTERP_CASES]
# Triton runs under its interpreter here: a subset that still has every axis kind (identity,
# nearest x2, nearest general, linear both align_corners, one output pixel, downsampling).
TRITON_CASES = {0, 2, 3, 7, 9, 10, 11, 14}


def _gradcheck_kwargs(backend):
    """Triton (interpreted) uses gradcheck's fast mode: one random projection of the Jacobian
    instead of a backward call per output element."""
    return {"fast_mode": True} if backend == "triton" else {}


def _with_grad(fn, *tensors, gy=None):
    """fn(*tensors), its gradients for gy (random if None), and gy."""
    leaves = [t.detach().clone().requires_grad_() for t in tensors]
    y = fn(*leaves)
    gy = torch.randn_like(y) if gy is None else gy
    return y, torch.autograd.grad(y, leaves, gy), gy


def check_interpolate(backend, device, shape, kw, dtype):
    x = torch.randn(shape, dtype=dtype, device=device)
    y, (gx,), gy = _with_grad(lambda t: ops.interpolate(t, **kw, backend=backend), x)
    y_same, (gx_same,), _ = _with_grad(lambda t: F.interpolate(t, **kw), x, gy=gy)
    y64, (gx64,), _ = _with_grad(lambda t: F.interpolate(t, **kw), x.double(), gy=gy.double())
    name = f"interpolate{kw}"
    if kw.get("mode", "nearest") == "nearest":
        assert torch.equal(y, y_same), f"{name}: nearest must pick exactly torch's pixels"
    assert_close(y, y_same, name=f"{name} forward vs torch {dtype}")
    size = max(shape[2:] + y.shape[2:])
    taps = math.ceil(y.shape[2] / shape[2] + 1) * math.ceil(y.shape[3] / shape[3] + 1)
    assert_close(y, y64, reduction=size ** 2, name=f"{name} forward")
    assert_close(gx, gx_same, reduction=taps, name=f"{name} backward vs torch {dtype}")
    assert_close(gx, gx64, reduction=taps * size ** 2, name=f"{name} backward")


@pytest.mark.parametrize("backend,device", backend_params())
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", range(len(INTERP_CASES)), ids=CASE_IDS)
def test_interpolate_matches_reference(backend, device, dtype, case):
    if backend == "triton" and device == "cpu" and case not in TRITON_CASES:
        pytest.skip("triton under the interpreter runs the TRITON_CASES subset")
    check_interpolate(backend, device, *INTERP_CASES[case], dtype)


@pytest.mark.parametrize("backend,device", backend_params())
@pytest.mark.parametrize("mode", ["nearest", "bilinear"])
def test_interpolate_channels_last(backend, device, mode):
    x = torch.randn(2, 3, 5, 7, device=device).to(memory_format=torch.channels_last)
    y = ops.interpolate(x, scale_factor=1.7, mode=mode, backend=backend)
    ref = F.interpolate(x, scale_factor=1.7, mode=mode)
    assert y.is_contiguous(memory_format=torch.channels_last), "channels_last in, channels_last out (as torch)"
    assert_close(y, ref)


def test_interpolate_cpu_each_isa(isa):  # noqa: F811
    # Widths 37 and 75 leave a tail in every vector width; 40 planes spread over the threads.
    for kw in [dict(scale_factor=2, mode="bilinear"), dict(size=(13, 75), mode="bilinear", align_corners=True),
               dict(scale_factor=0.6, mode="bilinear"), dict(scale_factor=2), dict(size=(9, 37))]:
        check_interpolate("cpu", "cpu", (4, 10, 11, 37), kw, torch.float32)
        check_interpolate("cpu", "cpu", (1, 2, 5, 19), kw, torch.float64)


@settings(max_examples=60, deadline=None)
@given(h=st.integers(1, 12), w=st.integers(1, 12), mode=st.sampled_from(["nearest", "bilinear"]),
       align=st.booleans(), by_size=st.booleans(), oh=st.integers(1, 20), ow=st.integers(1, 20),
       sh=st.floats(0.25, 3.5), sw=st.floats(0.25, 3.5))
def test_interpolate_hypothesis_sizes(h, w, mode, align, by_size, oh, ow, sh, sw):
    kw = dict(mode=mode, align_corners=(align if mode == "bilinear" else None))
    x = torch.randn(1, 2, h, w, dtype=torch.float64)
    if not by_size and (math.floor(h * sh) < 1 or math.floor(w * sw) < 1):
        with pytest.raises(ValueError, match="scale_factor"):  # torch would make an empty output
            ops.interpolate(x, scale_factor=(sh, sw), **kw)
    else:
        if by_size:
            kw["size"] = (oh, ow)
        else:
            kw["scale_factor"] = (sh, sw)
        check_interpolate("cpu", "cpu", tuple(x.shape), kw, torch.float64)


@pytest.mark.parametrize("backend,device", backend_params())
def test_interpolate_gradcheck(backend, device):
    x = torch.randn(1, 2, 4, 5, dtype=torch.float64, device=device, requires_grad=True)
    for kw in [dict(scale_factor=1.7), dict(scale_factor=(2, 0.6)), dict(size=(7, 3), mode="bilinear"),
               dict(scale_factor=1.7, mode="bilinear", align_corners=True), dict(size=(3, 8), mode="bilinear")]:
        gradcheck(lambda t: ops.interpolate(t, **kw, backend=backend), (x,), **_gradcheck_kwargs(backend))


# 3-D inputs (N, C, L): 'nearest' and 'linear' (torch's modes for 3-D that fastcnn has in 2-D) run the
# 2-D kernels on a height-1 image.
INTERP_1D_CASES = [
    ((2, 3, 7), dict(scale_factor=1.7)),
    ((1, 1, 9), dict(size=4)),
    ((2, 3, 7), dict(scale_factor=2, mode="linear")),
    ((2, 3, 7), dict(scale_factor=0.6, mode="linear", align_corners=True)),
    ((1, 2, 5), dict(size=(11,), mode="linear", align_corners=False)),
    ((1, 2, 5), dict(size=1, mode="linear", align_corners=True)),
    ((2, 1, 6), dict(scale_factor=2.3, mode="linear", recompute_scale_factor=True)),
]


@pytest.mark.parametrize("backend,device", backend_params())
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,kw", INTERP_1D_CASES, ids=[f"{s}-{kw}" for s, kw in INTERP_1D_CASES])
def test_interpolate_3d_input(backend, device, dtype, shape, kw):
    x = torch.randn(shape, dtype=dtype, device=device)
    y, (gx,), gy = _with_grad(lambda t: ops.interpolate(t, **kw, backend=backend), x)
    y_same, (gx_same,), _ = _with_grad(lambda t: F.interpolate(t, **kw), x, gy=gy)
    taps = math.ceil(y.shape[2] / shape[2] + 1)
    if kw.get("mode", "nearest") == "nearest":
        assert torch.equal(y, y_same), "nearest must pick exactly torch's elements"
    assert_close(y, y_same, name="forward")
    assert_close(gx, gx_same, reduction=taps, name="backward")
    if dtype == torch.float64:
        gradcheck(lambda t: ops.interpolate(t, **kw, backend=backend), (x.detach().requires_grad_(),),
                  **_gradcheck_kwargs(backend))


def test_interpolate_bad_input():
    x = torch.randn(1, 2, 5, 5)
    with pytest.raises(ValueError, match="size, scale_factor.*both"):
        ops.interpolate(x, size=3, scale_factor=2)
    with pytest.raises(ValueError, match="size, scale_factor.*neither"):
        ops.interpolate(x)
    with pytest.raises(ValueError, match="input: expected a 3-D or 4-D"):
        ops.interpolate(torch.randn(1, 2, 5, 5, 5), scale_factor=2)
    with pytest.raises(ValueError, match="mode"):  # torch's names: 'linear' is for 3-D inputs
        ops.interpolate(x, scale_factor=2, mode="linear")
    with pytest.raises(ValueError, match="mode"):
        ops.interpolate(torch.randn(2, 5, 5), scale_factor=2, mode="bilinear")
    with pytest.raises(ValueError, match="size"):
        ops.interpolate(torch.randn(2, 5, 5), size=(3, 4))
    with pytest.raises(ValueError, match="align_corners"):
        ops.interpolate(x, scale_factor=2, mode="nearest", align_corners=False)
    with pytest.raises(ValueError, match="mode"):
        ops.interpolate(x, scale_factor=2, mode="bilinar")
    with pytest.raises(NotImplementedError, match="mode"):
        ops.interpolate(x, scale_factor=2, mode="bicubic")
    with pytest.raises(NotImplementedError, match="antialias"):
        ops.interpolate(x, scale_factor=2, mode="bilinear", antialias=True)
    with pytest.raises(ValueError, match="recompute_scale_factor"):
        ops.interpolate(x, size=3, recompute_scale_factor=True)
    with pytest.raises(ValueError, match="scale_factor"):
        ops.interpolate(x, scale_factor=-2.0)
    with pytest.raises(ValueError, match="scale_factor"):
        ops.interpolate(x, scale_factor=0.1)  # empty output
    with pytest.raises(ValueError, match="size"):
        ops.interpolate(x, size=(0, 3))
    with pytest.raises(TypeError, match="input"):
        ops.interpolate(x.int(), scale_factor=2)
    with pytest.raises(TypeError, match="align_corners"):
        ops.interpolate(x, scale_factor=2, mode="bilinear", align_corners="yes")


def test_upsample_modules():
    x = torch.randn(2, 3, 5, 7)
    pairs = [(fastcnn.nn.Upsample(scale_factor=1.7, mode="bilinear"), torch.nn.Upsample(scale_factor=1.7, mode="bilinear")),
             (fastcnn.nn.Upsample(size=(4, 9)), torch.nn.Upsample(size=(4, 9))),
             (fastcnn.nn.UpsamplingNearest2d(scale_factor=2), torch.nn.UpsamplingNearest2d(scale_factor=2)),
             (fastcnn.nn.UpsamplingBilinear2d(size=(8, 11)), torch.nn.UpsamplingBilinear2d(size=(8, 11)))]
    for ours, theirs in pairs:
        assert repr(ours) == "fastcnn.nn." + repr(theirs)  # torch's repr, marked as fastcnn's
        assert_close(ours(x), theirs(x), name=repr(ours))
    reference_module = fastcnn.nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True, backend="reference")
    assert_close(reference_module(x), F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True))


# ----------------------------------------------------------------------------------------------
# pixel_shuffle / pixel_unshuffle

SHUFFLE_CASES = [((2, 12, 5, 7), 2), ((1, 9, 3, 4), 3), ((3, 4, 2, 5), 1), ((2, 2, 8, 3, 3), 2), ((1, 8, 1, 1), 2),
                 ((16, 3, 1), 1)]


@pytest.mark.parametrize("backend,device", backend_params())
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,r", SHUFFLE_CASES)
def test_pixel_shuffle_and_unshuffle(backend, device, dtype, shape, r):
    x = torch.randn(shape, dtype=dtype, device=device)
    y, (gx,), gy = _with_grad(lambda t: ops.pixel_shuffle(t, r, backend=backend), x)
    y_ref, (gx_ref,), _ = _with_grad(lambda t: F.pixel_shuffle(t, r), x, gy=gy)
    assert torch.equal(y, y_ref) and torch.equal(gx, gx_ref), "a permutation must be exact"
    z, (gz,), gw = _with_grad(lambda t: ops.pixel_unshuffle(t, r, backend=backend), y_ref)
    z_ref, (gz_ref,), _ = _with_grad(lambda t: F.pixel_unshuffle(t, r), y_ref, gy=gw)
    assert torch.equal(z, z_ref) and torch.equal(gz, gz_ref)
    assert torch.equal(z, x)


@pytest.mark.parametrize("backend,device", backend_params())
def test_pixel_shuffle_channels_last_and_gradcheck(backend, device):
    x = torch.randn(2, 8, 3, 5, device=device).to(memory_format=torch.channels_last)
    assert torch.equal(ops.pixel_shuffle(x, 2, backend=backend), F.pixel_shuffle(x, 2))
    x = torch.randn(1, 4, 3, 2, dtype=torch.float64, device=device, requires_grad=True)
    gradcheck(lambda t: ops.pixel_shuffle(t, 2, backend=backend), (x,), **_gradcheck_kwargs(backend))
    gradcheck(lambda t: ops.pixel_unshuffle(t, 1, backend=backend), (x,), **_gradcheck_kwargs(backend))
    y = torch.randn(1, 1, 4, 6, dtype=torch.float64, device=device, requires_grad=True)
    gradcheck(lambda t: ops.pixel_unshuffle(t, 2, backend=backend), (y,), **_gradcheck_kwargs(backend))


def test_pixel_shuffle_bad_input():
    with pytest.raises(ValueError, match="upscale_factor"):
        ops.pixel_shuffle(torch.randn(1, 6, 3, 3), 2)
    with pytest.raises(ValueError, match="upscale_factor"):
        ops.pixel_shuffle(torch.randn(1, 4, 3, 3), 0)
    with pytest.raises(TypeError, match="upscale_factor"):
        ops.pixel_shuffle(torch.randn(1, 4, 3, 3), 2.0)
    with pytest.raises(ValueError, match="input"):
        ops.pixel_shuffle(torch.randn(4, 3), 2)
    with pytest.raises(ValueError, match="downscale_factor"):
        ops.pixel_unshuffle(torch.randn(1, 4, 3, 4), 2)
    with pytest.raises(TypeError, match="input"):
        ops.pixel_unshuffle(torch.zeros(1, 4, 4, 4, dtype=torch.int64), 2)


def test_pixel_shuffle_modules():
    x = torch.randn(2, 18, 4, 6)
    for ours, theirs in [(fastcnn.nn.PixelShuffle(3), torch.nn.PixelShuffle(3)),
                         (fastcnn.nn.PixelUnshuffle(2), torch.nn.PixelUnshuffle(2))]:
        assert repr(ours) == "fastcnn.nn." + repr(theirs)  # torch's repr, marked as fastcnn's
        assert torch.equal(ours(x), theirs(x))


# ----------------------------------------------------------------------------------------------
# unfold / fold: the convolution's im2col / col2im kernels (gemm family)

UNFOLD_CASES = [((2, 3, 7, 9), dict(kernel_size=3)),
                ((1, 2, 8, 7), dict(kernel_size=(2, 3), dilation=(2, 1), padding=(1, 2), stride=(3, 2))),
                ((1, 1, 5, 5), dict(kernel_size=5, padding=2)),
                ((3, 6, 6), dict(kernel_size=2, stride=2))]


def _need_im2col(backend):
    for slot in (kernels.im2col, kernels.col2im):
        if not slot.offered_by(backend):
            pytest.skip(f"{slot.name} kernel not registered on {backend}")


@pytest.mark.parametrize("backend,device", backend_params())
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,kw", UNFOLD_CASES)
def test_unfold_and_fold(backend, device, dtype, shape, kw):
    _need_im2col(backend)
    x = torch.randn(shape, dtype=dtype, device=device)
    cols, (gx,), gc = _with_grad(lambda t: ops.unfold(t, **kw, backend=backend), x)
    cols_ref, (gx_ref,), _ = _with_grad(lambda t: F.unfold(t, **kw), x.double(), gy=gc.double())
    assert_close(cols, cols_ref, name="unfold")
    k = kw["kernel_size"]
    taps = k[0] * k[1] if isinstance(k, tuple) else k * k  # col2im sums at most R*S columns per pixel
    assert_close(gx, gx_ref, reduction=taps, name="unfold backward")
    out_size = shape[-2:]
    y, (gcols,), gy = _with_grad(lambda t: ops.fold(t, out_size, **kw, backend=backend), cols_ref.to(dtype))
    y_ref, (gcols_ref,), _ = _with_grad(lambda t: F.fold(t, out_size, **kw), cols_ref, gy=gy.double())
    assert_close(y, y_ref, reduction=taps, name="fold")
    assert_close(gcols, gcols_ref, name="fold backward")


@pytest.mark.parametrize("backend,device", backend_params())
def test_unfold_fold_gradcheck(backend, device):
    _need_im2col(backend)
    x = torch.randn(1, 2, 5, 6, dtype=torch.float64, device=device, requires_grad=True)
    kw = dict(kernel_size=(2, 3), dilation=(2, 1), padding=1, stride=(2, 1))
    gradcheck(lambda t: ops.unfold(t, **kw, backend=backend), (x,), **_gradcheck_kwargs(backend))
    cols = F.unfold(x.detach(), **kw).requires_grad_()
    gradcheck(lambda t: ops.fold(t, (5, 6), **kw, backend=backend), (cols,), **_gradcheck_kwargs(backend))


def test_unfold_fold_bad_input():
    # The checks run before a kernel is looked up, so these hold with or without im2col on main.
    with pytest.raises(ValueError, match="input"):
        ops.unfold(torch.randn(2, 3, 4, 5, 6), 2)
    with pytest.raises(ValueError, match="kernel_size"):
        ops.unfold(torch.randn(1, 1, 3, 3), 5)
    with pytest.raises(ValueError, match="stride"):
        ops.unfold(torch.randn(1, 1, 3, 3), 2, stride=0)
    with pytest.raises(ValueError, match="padding"):
        ops.unfold(torch.randn(1, 1, 3, 3), 2, padding=-1)
    with pytest.raises(ValueError, match="input"):
        ops.fold(torch.randn(1, 5, 4), (3, 3), 2)  # 5 not divisible by 2*2
    with pytest.raises(ValueError, match="input"):
        ops.fold(torch.randn(1, 4, 5), (3, 3), 2)  # 3x3 output with a 2x2 kernel has 4 blocks
    with pytest.raises(TypeError, match="output_size"):
        ops.fold(torch.randn(1, 4, 4), "3", 2)


# ----------------------------------------------------------------------------------------------
# grid_sample

def _grid(n, p, q, h, w, align_corners, lo=-1.2, hi=1.2, dtype=torch.float64, device="cpu", away=False,
          inside=False):
    """Random grid; with away=True every point sits at 0.2..0.8 inside a pixel cell (gradcheck's
    finite differences then never straddle a cell boundary), in cells that reach one pixel beyond
    the image (zero padding) or, with inside=True, only cells inside it (away from border's clip)."""
    if not away:
        return (torch.rand(n, p, q, 2, dtype=dtype) * (hi - lo) + lo).to(device)
    sizes = torch.tensor([w, h], dtype=dtype)
    first = 0 if inside else -1
    cells = torch.stack([torch.randint(first, w - 1 if inside else w, (n, p, q)),
                         torch.randint(first, h - 1 if inside else h, (n, p, q))], -1).to(dtype)
    pix = cells + 0.2 + 0.6 * torch.rand(n, p, q, 2, dtype=dtype)
    g = 2 * pix / (sizes - 1) - 1 if align_corners else (2 * pix + 1) / sizes - 1
    return g.to(device)


GRID_CASES = [((2, 3, 5, 7), (4, 6)), ((1, 1, 4, 3), (5, 2)), ((3, 2, 1, 6), (3, 3))]


GRID_PADDINGS = ["zeros", "border", "reflection"]


@pytest.mark.parametrize("backend,device", backend_params())
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
@pytest.mark.parametrize("padding_mode", GRID_PADDINGS)
@pytest.mark.parametrize("align_corners", [False, True])
def test_grid_sample_matches_reference(backend, device, dtype, mode, padding_mode, align_corners):
    # reflection: points up to two image widths outside, so coordinates fold back more than once
    span = 3.2 if padding_mode == "reflection" else 1.2
    for xshape, (p, q) in GRID_CASES:
        x = torch.randn(xshape, dtype=dtype, device=device)
        g = _grid(xshape[0], p, q, *xshape[2:], align_corners, lo=-span, hi=span, dtype=dtype, device=device)
        kw = dict(mode=mode, padding_mode=padding_mode, align_corners=align_corners)
        y, (gx, gg), gy = _with_grad(lambda a, b: ops.grid_sample(a, b, **kw, backend=backend), x, g)
        y64, (gx64, gg64), _ = _with_grad(lambda a, b: F.grid_sample(a, b, **kw), x.double(), g.double(),
                                          gy=gy.double())
        size = max(xshape[2:])
        assert_close(y, y64, reduction=4 * size ** 2, name=f"grid_sample {xshape} forward")
        assert_close(gx, gx64, reduction=p * q * size ** 2, name=f"grid_sample {xshape} input grad")
        assert_close(gg, gg64, reduction=4 * xshape[1] * size ** 2, name=f"grid_sample {xshape} grid grad")


@pytest.mark.parametrize("backend,device", backend_params())
def test_grid_sample_layouts_and_one_grad(backend, device):
    x = torch.randn(2, 3, 5, 7, device=device).to(memory_format=torch.channels_last)
    g = _grid(2, 6, 4, 5, 7, False, dtype=torch.float32, device=device).transpose(1, 2)  # non-contiguous grid
    assert_close(ops.grid_sample(x, g, backend=backend), F.grid_sample(x.double(), g.double(), align_corners=False),
                 reduction=4 * 49)
    xr = x.detach().requires_grad_()
    (gx,) = torch.autograd.grad(ops.grid_sample(xr, g, backend=backend).sum(), xr)  # grid needs no grad
    xr64 = x.double().requires_grad_()
    (gx64,) = torch.autograd.grad(F.grid_sample(xr64, g.double(), align_corners=False).sum(), xr64)
    assert_close(gx, gx64, reduction=24 * 49)


@pytest.mark.parametrize("backend,device", backend_params())
@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
@pytest.mark.parametrize("padding_mode", GRID_PADDINGS)
@pytest.mark.parametrize("align_corners", [False, True])
def test_grid_sample_gradcheck(backend, device, mode, padding_mode, align_corners):
    # Reflection folds the points one cell outside back to 0.2..0.8 inside a cell, away from kinks.
    x = torch.randn(2, 2, 4, 5, dtype=torch.float64, device=device, requires_grad=True)
    g = _grid(2, 3, 2, 4, 5, align_corners, device=device, away=True, inside=padding_mode == "border")
    kw = dict(mode=mode, padding_mode=padding_mode, align_corners=align_corners, backend=backend)
    if mode == "nearest":  # piecewise constant in the grid: gradient w.r.t. the input only
        gradcheck(lambda a: ops.grid_sample(a, g, **kw), (x,), **_gradcheck_kwargs(backend))
        return
    g.requires_grad_()
    gradcheck(lambda a, b: ops.grid_sample(a, b, **kw), (x, g), **_gradcheck_kwargs(backend))


@pytest.mark.parametrize("backend,device", backend_params())
@pytest.mark.parametrize("align_corners", [False, True])
def test_grid_sample_nearest_ties_round_half_to_even(backend, device, align_corners):
    # Grid points exactly halfway between pixels: torch rounds with nearbyint (half to even). Widths
    # for which every such point is a short binary fraction, so both unnormalisations are exact.
    W = 5 if align_corners else 4
    half = torch.arange(-1, W + 1, dtype=torch.float64) + 0.5  # pixel coordinates k + 0.5
    g1 = 2 * half / (W - 1) - 1 if align_corners else (2 * half + 1) / W - 1
    g = torch.stack([g1, torch.zeros_like(g1)], -1).view(1, 1, -1, 2).to(device)
    x = torch.arange(W, dtype=torch.float64, device=device).view(1, 1, 1, W) + 1
    for padding_mode in GRID_PADDINGS:
        kw = dict(mode="nearest", padding_mode=padding_mode, align_corners=align_corners)
        assert torch.equal(ops.grid_sample(x, g, **kw, backend=backend), F.grid_sample(x, g, **kw)), padding_mode


def test_grid_sample_cpu_threads_split_channels():
    # Batch 1 with more threads than images: the cpu kernel splits channels and sums partial grid
    # gradients; compare with the single-thread result and the reference.
    x = torch.randn(1, 6, 9, 11, dtype=torch.float64)
    g = _grid(1, 7, 5, 9, 11, False)
    previous = torch.get_num_threads()
    try:
        results = []
        for threads in (1, 2):
            torch.set_num_threads(threads)
            _, grads, gy = _with_grad(lambda a, b: ops.grid_sample(a, b, backend="cpu"), x, g,
                                      gy=torch.ones(1, 6, 7, 5, dtype=torch.float64))
            results.append(grads)
    finally:
        torch.set_num_threads(previous)
    _, ref, _ = _with_grad(lambda a, b: F.grid_sample(a, b, align_corners=False), x, g, gy=gy)
    for grads in results:
        assert_close(grads[0], ref[0], reduction=35, name="input grad")
        assert_close(grads[1], ref[1], reduction=6 * 4, name="grid grad")


def test_grid_sample_bad_input():
    x = torch.randn(2, 3, 5, 5)
    with pytest.raises(ValueError, match="grid"):
        ops.grid_sample(x, torch.randn(2, 4, 4, 3))
    with pytest.raises(ValueError, match="grid"):
        ops.grid_sample(x, torch.randn(1, 4, 4, 2))
    with pytest.raises(ValueError, match="grid"):
        ops.grid_sample(x, torch.randn(2, 4, 2))
    with pytest.raises(ValueError, match="input"):
        ops.grid_sample(torch.randn(3, 5, 5), torch.randn(3, 4, 4, 2))
    with pytest.raises(TypeError, match="grid"):
        ops.grid_sample(x, torch.randn(2, 4, 4, 2, dtype=torch.float64))
    for padding_mode in ("wrap", "reflect", "Zeros"):
        with pytest.raises(ValueError, match="padding_mode"):
            ops.grid_sample(x, torch.randn(2, 4, 4, 2), padding_mode=padding_mode)
    with pytest.raises(NotImplementedError, match="mode"):
        ops.grid_sample(x, torch.randn(2, 4, 4, 2), mode="bicubic")
    for mode in ("linear", "nearest-exact", "Nearest"):
        with pytest.raises(ValueError, match="mode"):
            ops.grid_sample(x, torch.randn(2, 4, 4, 2), mode=mode)
    with pytest.raises(TypeError, match="^mode"):
        ops.grid_sample(x, torch.randn(2, 4, 4, 2), mode=0)
    with pytest.raises(TypeError, match="padding_mode"):
        ops.grid_sample(x, torch.randn(2, 4, 4, 2), padding_mode=["zeros"])

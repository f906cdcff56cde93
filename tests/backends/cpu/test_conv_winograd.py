"""Tests of the cpu and triton Winograd F(4x4,3x3) convolutions and the cpu F(6x6,3x3) (the `tile=6` of
conv2d_forward.winograd, conv2d_backward_input.winograd) against an fp64 reference, with the error
bound derived in docs/algo-winograd.md for each tile m (not a generic tolerance):

    |y_winograd - y| <= gamma(C/g + n_m) * E + gamma_ref,   n_4 = 25, n_6 = 22,
    E = |A^T| (sum_c |G| |g_kc| |G^T| . |B^T| |d_tc| |B|) |A| + |bias|   (per m x m output tile),

gamma(n) = n u / (1 - n u), u the unit roundoff of the kernel's dtype; gamma_ref the fp64
reference's own error (a direct sum of 9 C/g products: gamma_64(9 C/g + 2) * (|x| * |w| + |b|)).
E is computed here in float64 from the same tiling the kernel uses (m x m output tiles from the top
left corner, (m+2) x (m+2) input patches at origin - pad, zeros outside) and the tile's matrices.
The triton kernels (F(4x4); CPU tensors: the interpreter) make the same roundings per transform
(fastcnn/kernels/triton/conv_winograd.py), so the same bound applies to both backends.
"""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import fastcnn.ops as ops
from fastcnn import _C
from fastcnn.contracts import kernels
from conv_reference import conv_kernel
from fastcnn.ops import _conv_algo
from fastcnn.backends.cpu._lib import DTYPE_CODE
from fastcnn.backends.cpu.conv_winograd import choose_tile
from fastcnn.contracts.conv import ConvShape
from helpers import gradcheck, isa  # noqa: F401  (isa is a fixture)

FWD = kernels.conv2d_forward.winograd
BWD_INPUT = kernels.conv2d_backward_input.winograd
BWD_WEIGHT = kernels.conv2d_backward_weight.winograd
ONE = (1, 1)

BT = torch.tensor([[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
                   [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]], dtype=torch.float64)
G = torch.tensor([[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6],
                  [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]], dtype=torch.float64)
AT = torch.tensor([[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]],
                  dtype=torch.float64)
# F(6x6,3x3): points 0, +-1, +-2, +-1/2, infinity (csrc/kernels/conv_winograd.cpp Wino<6>)
BT6 = torch.tensor([[1, 0, -21 / 4, 0, 21 / 4, 0, -1, 0], [0, 1, 1, -17 / 4, -17 / 4, 1, 1, 0],
                    [0, -1, 1, 17 / 4, -17 / 4, -1, 1, 0], [0, 1 / 2, 1 / 4, -5 / 2, -5 / 4, 2, 1, 0],
                    [0, -1 / 2, 1 / 4, 5 / 2, -5 / 4, -2, 1, 0], [0, 2, 4, -5 / 2, -5, 1 / 2, 1, 0],
                    [0, -2, 4, 5 / 2, -5, -1 / 2, 1, 0], [0, -1, 0, 21 / 4, 0, -21 / 4, 0, 1]], dtype=torch.float64)
G6 = torch.tensor([[1, 0, 0], [-2 / 9, -2 / 9, -2 / 9], [-2 / 9, 2 / 9, -2 / 9], [1 / 90, 1 / 45, 2 / 45],
                   [1 / 90, -1 / 45, 2 / 45], [32 / 45, 16 / 45, 8 / 45], [32 / 45, -16 / 45, 8 / 45], [0, 0, 1]],
                  dtype=torch.float64)
AT6 = torch.tensor([[1, 1, 1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 1 / 2, -1 / 2, 0], [0, 1, 1, 4, 4, 1 / 4, 1 / 4, 0],
                    [0, 1, -1, 8, -8, 1 / 8, -1 / 8, 0], [0, 1, 1, 16, 16, 1 / 16, 1 / 16, 0],
                    [0, 1, -1, 32, -32, 1 / 32, -1 / 32, 1]], dtype=torch.float64)
# tile m: (B^T, G, A^T, roundings besides the GEMM's C/g: docs/algo-winograd.md's tables)
TRANSFORMS = {4: (BT, G, AT, 25), 6: (BT6, G6, AT6, 22)}
# (backend, tile) pairs: the triton kernels are F(4x4) only
IMPLS = [("cpu", 4), ("cpu", 6), ("triton", 4)]


def unit_roundoff(dtype):
    return torch.finfo(dtype).eps / 2


def gamma(n, dtype):
    u = unit_roundoff(dtype)
    return n * u / (1 - n * u)


def test_transform_matrices_compute_the_correlation():
    """A^T [(G g) . (B^T d)] is the 1-D correlation of d with g for both tiles (the tables above)."""
    torch.manual_seed(0)
    for m, (bt, g_, at, _) in TRANSFORMS.items():
        d, g = torch.randn(m + 2, dtype=torch.float64), torch.randn(3, dtype=torch.float64)
        ref = torch.stack([d[i:i + 3] @ g for i in range(m)])
        torch.testing.assert_close(at @ ((g_ @ g) * (bt @ d)), ref, rtol=0, atol=1e-13)


def input_patches(x, pad, TY, TX, m=4):
    """[N, C, TY, TX, m+2, m+2]: the patch each m x m output tile reads (origin - pad, zeros outside x)."""
    N, C, H, W = x.shape
    # xp[i, j] = x[i - pad_h, j - pad_w] (zero outside x), rows/columns the tiles read
    xp = x.new_zeros(N, C, m * TY + 2, m * TX + 2)
    (ph, pw) = pad
    r0, c0 = max(0, -ph), max(0, -pw)
    rows = min(H - r0, xp.shape[2] - (r0 + ph))
    cols = min(W - c0, xp.shape[3] - (c0 + pw))
    if rows > 0 and cols > 0:
        xp[:, :, r0 + ph:r0 + ph + rows, c0 + pw:c0 + pw + cols] = x[:, :, r0:r0 + rows, c0:c0 + cols]
    return xp.unfold(2, m + 2, m).unfold(3, m + 2, m)


def winograd_abs(x, w, bias, pad, groups, out_hw, tile=4):
    """E of the module docstring: the Winograd algorithm run on |x|, |w|, |bias| with |A|, |G|, |B|.
    x [N, C, H, W], w [K, C/g, 3, 3] (the correlation's effective kernel); pad may be negative."""
    bt, g_, at = (t.abs() for t in TRANSFORMS[tile][:3])
    m, n = tile, tile + 2
    x, w = x.detach().double().abs(), w.detach().double().abs()
    N, C, H, W = x.shape
    K, Cg = w.shape[:2]
    P, Q = out_hw
    TY, TX = -(-P // m), -(-Q // m)
    V = bt @ input_patches(x, pad, TY, TX, m) @ bt.T
    U = g_ @ w @ g_.T                                                      # [K, Cg, n, n]
    M = torch.einsum("ngcyxij,gkcij->ngkyxij", V.view(N, groups, Cg, TY, TX, n, n),
                     U.view(groups, K // groups, Cg, n, n))
    Y = at @ M @ at.T                                                      # [N, g, K/g, TY, TX, m, m]
    Y = Y.reshape(N, K, TY, TX, m, m).permute(0, 1, 2, 4, 3, 5).reshape(N, K, m * TY, m * TX)[:, :, :P, :Q]
    return Y + (bias.detach().double().abs().view(1, K, 1, 1) if bias is not None else 0)


def assert_within_bound(got, ref, x, w_eff, bias, pad, groups, dtype, tile=4):
    """got (the kernel's result, output tile `tile`) against ref (fp64) with the derived bound."""
    Cg = w_eff.shape[1]
    E = winograd_abs(x, w_eff, bias, pad, groups, tuple(ref.shape[-2:]), tile)
    xpad = F.pad(x.detach().double().abs(), (max(pad[1], 0), max(pad[1], 0) + 4, max(pad[0], 0), max(pad[0], 0) + 4))
    direct = F.conv2d(xpad[:, :, max(-pad[0], 0):, max(-pad[1], 0):], w_eff.detach().double().abs(), None,
                      groups=groups)[:, :, :ref.shape[2], :ref.shape[3]]
    if bias is not None:
        direct = direct + bias.detach().double().abs().view(1, -1, 1, 1)
    bound = gamma(Cg + TRANSFORMS[tile][3], dtype) * E + gamma(9 * Cg + 2, torch.float64) * direct
    err = (got.double() - ref).abs()
    assert got.dtype == dtype and got.shape == ref.shape
    bad = err > bound
    assert not bad.any(), (f"{int(bad.sum())} of {err.numel()} outside the bound; worst err {err.max().item():.3g}, "
                           f"bound there {bound[err == err.max()][0].item():.3g}")
    return (err / bound.clamp_min(1e-300)).max().item()


def flipped_transposed(w, groups):
    """The kernel of the backward-input correlation: [C, K/g, 3, 3] from the forward's [K, C/g, 3, 3]."""
    K, Cg = w.shape[:2]
    return w.view(groups, K // groups, Cg, 3, 3).transpose(1, 2).reshape(groups * Cg, K // groups, 3, 3).flip(-1, -2)


# N, C, H, W, K, padding, groups
CASES = [
    (2, 3, 11, 9, 5, (1, 1), 1),     # odd H/W, C not a multiple of the vector width
    (1, 17, 7, 13, 3, (0, 0), 1),    # batch 1, padding 0
    (2, 4, 10, 15, 6, (2, 2), 2),    # padding 2, groups 2
    (3, 6, 9, 8, 9, (1, 2), 3),      # asymmetric padding, groups 3
    (2, 5, 9, 10, 5, (1, 1), 5),     # depthwise
    (1, 2, 3, 3, 2, (0, 0), 1),      # one output pixel
    (1, 19, 21, 18, 7, (3, 1), 1),   # padding beyond the kernel's half: negative backward pad
]


BACKENDS = ["cpu", "triton"]


def pinned(backend, tile):
    """The keyword pinning the cpu kernels' output tile (the triton kernels have F(4x4) only)."""
    return {"tile": tile} if backend == "cpu" else {}


@pytest.mark.parametrize("backend,tile", IMPLS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("case", CASES)
def test_forward_and_backward_input_within_bound(case, dtype, backend, tile):
    N, C, H, W, K, pad, groups = case
    torch.manual_seed(0)
    x, w, b = torch.randn(N, C, H, W, dtype=dtype), torch.randn(K, C // groups, 3, 3, dtype=dtype), \
        torch.randn(K, dtype=dtype)
    ref = F.conv2d(x.double(), w.double(), b.double(), 1, pad, 1, groups)
    P, Q = ref.shape[-2:]
    y = conv_kernel(backend, FWD)(x, w, b, ONE, pad, ONE, groups, (P, Q), None, 0.0, **pinned(backend, tile))
    assert_within_bound(y, ref, x, w, b, pad, groups, dtype, tile)

    gy = torch.randn(N, K, P, Q, dtype=dtype)
    gx_ref = torch.nn.grad.conv2d_input(x.shape, w.double(), gy.double(), 1, pad, 1, groups)
    gx = conv_kernel(backend, BWD_INPUT)(gy, w, (H, W), ONE, pad, ONE, groups, **pinned(backend, tile))
    assert_within_bound(gx, gx_ref, gy, flipped_transposed(w, groups), None, (2 - pad[0], 2 - pad[1]), groups, dtype,
                        tile)


# The cpu forward runs per-thread blocks of 2-3 tile-vectors (conv_winograd.cpp forward_fused) where the
# filter-domain values and a block's transforms fit in 2.25 MiB, else chunks of tiles through fastcnn's
# GEMM (forward_chunked): 64 -> 70 on 5 images (80 tiles: tile-vectors spanning images, empty ones in
# the last block on AVX-512 and AVX2, 70 kernels: a row tail of the block GEMM on every copy) is fused,
# 128 -> 128 chunked.
# F(6x6) (1-tile-vector blocks on AVX-512): the same two layers are fused / chunked.
@pytest.mark.parametrize("tile", [4, 6])
@pytest.mark.parametrize("N,C,H,W,K,pad", [(5, 64, 13, 14, 70, (1, 1)), (1, 128, 9, 11, 128, (2, 0))])
def test_fused_and_chunked_forward_each_isa(isa, N, C, H, W, K, pad, tile):  # noqa: F811
    torch.manual_seed(3)
    x, w, b = torch.randn(N, C, H, W), torch.randn(K, C, 3, 3), torch.randn(K)
    ref = F.conv2d(x.double(), w.double(), b.double(), 1, pad)
    P, Q = ref.shape[-2:]
    y = conv_kernel("cpu", FWD)(x, w, b, ONE, pad, ONE, 1, (P, Q), None, 0.0, tile=tile)
    assert_within_bound(y, ref, x, w, b, pad, 1, torch.float32, tile)
    gy = torch.randn(N, K, P, Q)
    gx_ref = torch.nn.grad.conv2d_input(x.shape, w.double(), gy.double(), 1, pad)
    gx = conv_kernel("cpu", BWD_INPUT)(gy, w, (H, W), ONE, pad, ONE, 1, tile=tile)
    assert_within_bound(gx, gx_ref, gy, flipped_transposed(w, 1), None, (2 - pad[0], 2 - pad[1]), 1, torch.float32,
                        tile)


# forward_few_tiles (conv_winograd.cpp): where the tiles are few and the channels many (PSPNet's 1024->128
# head on 9x9 maps), every tile is one GEMM's columns and the chunks run over kernels and channels. The
# tests shrink the chunk budget (_C.conv_winograd.set_chunk_bytes) until a small layer runs each loop:
# several kernel chunks and several channel chunks (input transforms remade per kernel chunk, GEMMs
# accumulating over channel chunks), or a group's channels in one chunk (input transforms made once).
CHUNK_LADDER_KIB = (16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048)


@pytest.fixture
def chunk_budget():
    """Sets the kernels' chunk budget for the test; the default again afterwards."""
    yield _C.conv_winograd.set_chunk_bytes
    _C.conv_winograd.set_chunk_bytes(0)


def plan_of(shape, dtype, tile, backward_input=False):
    return _C.conv_winograd.plan(DTYPE_CODE[dtype], list(shape), tile, backward_input)


def few_tiles_budget(set_budget, shape, dtype, tile, backward_input, split_channels=None):
    """Sets the first budget of the ladder under which the pass takes the few-tiles path in more than
    one chunk: several kernel chunks with (split_channels True) several channel chunks or (False) one
    chunk of all channels; None: any split."""
    Kg = (shape.C if backward_input else shape.K) // shape.G
    Cg = (shape.K if backward_input else shape.C) // shape.G
    for kib in CHUNK_LADDER_KIB:
        set_budget(kib << 10)
        path, kernels, channels = plan_of(shape, dtype, tile, backward_input)
        if path != "few_tiles":
            continue
        if split_channels is None and (kernels < Kg or channels < Cg) or \
                split_channels is not None and kernels < Kg and (channels < Cg) == split_channels:
            return
    pytest.fail(f"no budget in the ladder runs {shape} on the few-tiles path with the chunks asked")


# N, C, H, W, K, pad, groups, forward's channel split: 9x9 maps (F(4x4): 9 tiles an image, F(6x6): 4),
# channels past the fused blocks' limit (U of a 64x64 layer)
FEW_TILES = [
    (2, 160, 9, 9, 144, (1, 1), 1, True),   # kernel and channel chunks
    (3, 48, 9, 11, 360, (2, 0), 1, False),  # one chunk of all channels, several of kernels; tiles cropped
    (2, 320, 9, 9, 288, (1, 1), 2, True),   # groups: chunks inside each group
]


@pytest.mark.parametrize("tile", [4, 6])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("case", FEW_TILES)
def test_few_tiles_forward_and_backward_input_each_isa(isa, chunk_budget, case, dtype, tile):  # noqa: F811
    N, C, H, W, K, pad, groups, split = case
    torch.manual_seed(4)
    x, w, b = torch.randn(N, C, H, W, dtype=dtype), torch.randn(K, C // groups, 3, 3, dtype=dtype), \
        torch.randn(K, dtype=dtype)
    ref = F.conv2d(x.double(), w.double(), b.double(), 1, pad, 1, groups)
    P, Q = ref.shape[-2:]
    shape = ConvShape.of(tuple(x.shape), tuple(w.shape), ONE, pad, ONE, groups, (P, Q))
    few_tiles_budget(chunk_budget, shape, dtype, tile, False, split)
    y = conv_kernel("cpu", FWD)(x, w, b, ONE, pad, ONE, groups, (P, Q), None, 0.0, tile=tile)
    assert_within_bound(y, ref, x, w, b, pad, groups, dtype, tile)

    few_tiles_budget(chunk_budget, shape, dtype, tile, True)
    gy = torch.randn(N, K, P, Q, dtype=dtype)
    gx_ref = torch.nn.grad.conv2d_input(x.shape, w.double(), gy.double(), 1, pad, 1, groups)
    gx = conv_kernel("cpu", BWD_INPUT)(gy, w, (H, W), ONE, pad, ONE, groups, tile=tile)
    assert_within_bound(gx, gx_ref, gy, flipped_transposed(w, groups), None, (2 - pad[0], 2 - pad[1]), groups, dtype,
                        tile)


def test_few_tiles_path_taken_where_it_pays(isa):  # noqa: F811
    """With the default budget: PSPNet's 1024->128 head on 9x9 maps (144 tiles) runs the few-tiles path
    both ways, the 64-channel layers their fused blocks, many channels on many tiles the tile chunks."""
    assert _C.conv_winograd.chunk_bytes() == 8 << 20
    pspnet = shape_of(16, 1024, 128, 9, 9)
    for backward_input in (False, True):
        path, kernels, channels = plan_of(pspnet, torch.float32, 4, backward_input)
        assert path == "few_tiles"
        assert kernels % 16 == 0 and channels % 16 == 0  # whole row blocks of the GEMM
    assert plan_of(HARDNET, torch.float32, 4)[0] == "fused"
    assert plan_of(shape_of(4, 256, 256, 64, 64), torch.float32, 4)[0] == "chunked"


@pytest.mark.parametrize("tile", [4, 6])
def test_bound_is_tight_enough_to_catch_a_wrong_result(tile):
    """The bound is far below the result's size: an off-by-one-tap kernel falls outside it."""
    torch.manual_seed(1)
    x, w = torch.randn(2, 8, 12, 12), torch.randn(8, 8, 3, 3)
    ref = F.conv2d(x.double(), w.double(), None, 1, 1)
    y = conv_kernel("cpu", FWD)(x, w, None, ONE, ONE, ONE, 1, (12, 12), None, 0.0, tile=tile)
    ratio = assert_within_bound(y, ref, x, w, None, ONE, 1, torch.float32, tile)
    assert ratio > 1e-3  # the error reaches a visible fraction of the bound: not slack by orders of magnitude
    shifted = ref.roll(1, dims=-1)
    with pytest.raises(AssertionError, match="outside the bound"):
        assert_within_bound(shifted.float(), ref, x, w, None, ONE, 1, torch.float32, tile)


@pytest.mark.parametrize("tile", [4, 6])
@pytest.mark.parametrize("case", [CASES[0], CASES[2], CASES[6]])
def test_each_isa_copy(isa, case, tile):  # noqa: F811  (isa: fixture switching the compiled copy)
    N, C, H, W, K, pad, groups = case
    torch.manual_seed(2)
    x, w, b = torch.randn(N, C, H, W), torch.randn(K, C // groups, 3, 3), torch.randn(K)
    ref = F.conv2d(x.double(), w.double(), b.double(), 1, pad, 1, groups)
    y = conv_kernel("cpu", FWD)(x, w, b, ONE, pad, ONE, groups, tuple(ref.shape[-2:]), None, 0.0, tile=tile)
    assert_within_bound(y, ref, x, w, b, pad, groups, torch.float32, tile)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("activation,param", [("relu", 0.0), ("leaky_relu", 0.1)])
def test_fused_activation(activation, param, backend):
    """relu and leaky_relu are 1-Lipschitz and exact: the bound of the pre-activation holds."""
    torch.manual_seed(3)
    x, w, b = torch.randn(2, 5, 9, 11), torch.randn(6, 5, 3, 3), torch.randn(6)
    pre = F.conv2d(x.double(), w.double(), b.double(), 1, 1)
    ref = F.relu(pre) if activation == "relu" else F.leaky_relu(pre, param)
    y = ops.conv2d(x, w, b, padding=1, algo="winograd", activation=activation, activation_param=param,
                   backend=backend)
    assert_within_bound(y, ref, x, w, b, ONE, 1, torch.float32)


def test_channels_last_input_and_public_op():
    torch.manual_seed(4)
    x = torch.randn(2, 7, 13, 10).to(memory_format=torch.channels_last)
    w, b = torch.randn(4, 7, 3, 3), torch.randn(4)
    y = ops.conv2d(x, w, b, padding=1, algo="winograd", backend="cpu")
    ref = F.conv2d(x.double(), w.double(), b.double(), 1, 1)
    assert_within_bound(y.contiguous(), ref, x.contiguous(), w, b, ONE, 1, torch.float32)


@pytest.mark.parametrize("backend", BACKENDS)
def test_gradcheck_f64(backend):
    """Every pass with algo='winograd': forward, backward-input and (cpu) backward-weight by Winograd;
    triton (no backward-weight kernel: that pass falls back to auto): small and gradcheck's fast mode (a random projection of the Jacobian), since every
    numerical derivative is a forward run by the interpreter."""
    torch.manual_seed(5)
    N, C, K = (2, 4, 6) if backend == "cpu" else (1, 2, 2)
    x = torch.randn(N, C, 7 - N, 6, dtype=torch.float64, requires_grad=True)
    w = torch.randn(K, C // 2, 3, 3, dtype=torch.float64, requires_grad=True)
    b = torch.randn(K, dtype=torch.float64, requires_grad=True)
    gradcheck(lambda x, w, b: ops.conv2d(x, w, b, padding=(1, 2), groups=2, algo="winograd", backend=backend),
              (x, w, b), fast_mode=backend == "triton")


@pytest.mark.parametrize("backend", BACKENDS)
def test_conv_transpose2d_forward_runs_winograd(backend):
    """conv_transpose2d (stride 1, 3x3) is the backward-input pass: winograd serves it."""
    torch.manual_seed(6)
    x, w = torch.randn(2, 6, 9, 7), torch.randn(6, 4, 3, 3)
    y = ops.conv_transpose2d(x, w, None, padding=1, algo="winograd", backend=backend)
    ref = F.conv_transpose2d(x.double(), w.double(), None, padding=1)
    # conv_transpose2d(x, w) = backward input of conv2d with weight w [in=6 -> K, C=4]
    assert_within_bound(y, ref, x, flipped_transposed(w, 1), None, (1, 1), 1, torch.float32)


@pytest.mark.parametrize("kw,what", [({"stride": 2}, "stride"), ({"dilation": 2}, "dilation"),
                                     ({"kernel": 5}, "3x3")])
def test_not_applicable_errors_name_algo_and_shape(kw, what):
    R = kw.pop("kernel", 3)
    x, w = torch.randn(1, 2, 9, 9), torch.randn(3, 2, R, R)
    with pytest.raises(ValueError, match=f"winograd.*{what}|{what}.*winograd"):
        ops.conv2d(x, w, None, padding=1, algo="winograd", backend="cpu", **kw)
    with pytest.raises(ValueError, match="winograd"):
        ops.conv_transpose2d(x[:, :2], torch.randn(2, 3, R, R), algo="winograd", backend="cpu", **kw)


@pytest.mark.parametrize("backend", BACKENDS)
def test_kernel_rejects_bad_shape_directly(backend):
    x, w = torch.randn(1, 2, 9, 9), torch.randn(3, 2, 5, 5)
    with pytest.raises(ValueError, match="weight: algo='winograd' takes 3x3"):
        conv_kernel(backend, FWD)(x, w, None, ONE, ONE, ONE, 1, (7, 7), None, 0.0)
    with pytest.raises(ValueError, match="stride: algo='winograd'"):
        conv_kernel(backend, BWD_INPUT)(torch.randn(1, 3, 4, 4), torch.randn(3, 2, 3, 3), (9, 9), (2, 2), ONE, ONE, 1)
    with pytest.raises(ValueError, match="groups"):
        conv_kernel("cpu", FWD)(x, torch.randn(3, 1, 3, 3), None, ONE, ONE, ONE, 3, (9, 9), None, 0.0)


@pytest.mark.parametrize("kernel_hw,stride,dilation", [((5, 5), (1, 1), (1, 1)), ((3, 3), (2, 2), (1, 1)),
                                                        ((3, 3), (1, 1), (2, 2)), ((1, 1), (1, 1), (1, 1)),
                                                        ((3, 1), (1, 1), (1, 1))])
def test_auto_never_picks_winograd_where_it_cannot_run(kernel_hw, stride, dilation):
    for direction in _conv_algo.DIRECTIONS:
        options = _conv_algo.candidates("cpu", direction, stride, dilation, kernel_hw)
        assert "winograd" not in options
        for N, C, HW in ((256, 64, 16), (16, 64, 96), (4, 64, 64), (16, 256, 13)):
            layer = _conv_algo.Layer(N, C, C, kernel_hw, (HW, HW), stride, dilation, 1)
            assert _conv_algo.heuristic(options, layer, direction) != "winograd"


def test_auto_runs_3x3_layers_end_to_end():
    """Whatever auto picks per pass for a 3x3 layer, forward and both gradients match the reference."""
    torch.manual_seed(7)
    x = torch.randn(2, 3, 10, 9, dtype=torch.float64, requires_grad=True)
    w = torch.randn(4, 3, 3, 3, dtype=torch.float64, requires_grad=True)
    gradcheck(lambda x, w: ops.conv2d(x, w, None, padding=1, algo="auto", backend="cpu"), (x, w))


def test_extension_exports_the_tile():
    assert _C.conv_winograd.output_tile == 4 and list(_C.conv_winograd.output_tiles) == [4, 6]


class _PinnedTile(torch.autograd.Function):
    """conv2d whose forward and backward-input run the cpu kernels with output tile `tile` (the weight
    gradient by the F(4x4) kernel): gradcheck then checks F(6x6)'s backward-input against its forward."""

    @staticmethod
    def forward(ctx, x, w, b, pad, groups, tile):
        ctx.save_for_backward(x, w)
        ctx.args = pad, groups, tile
        P, Q = x.shape[2] + 2 * pad[0] - 2, x.shape[3] + 2 * pad[1] - 2
        return conv_kernel("cpu", FWD)(x, w, b, ONE, pad, ONE, groups, (P, Q), None, 0.0, tile=tile)

    @staticmethod
    def backward(ctx, gy):
        x, w = ctx.saved_tensors
        pad, groups, tile = ctx.args
        gx = conv_kernel("cpu", BWD_INPUT)(gy.contiguous(), w, x.shape[2:], ONE, pad, ONE, groups, tile=tile)
        gw = conv_kernel("cpu", BWD_WEIGHT)(x, gy.contiguous(), (3, 3), ONE, pad, ONE, groups)
        return gx, gw, gy.sum((0, 2, 3)), None, None, None


@pytest.mark.parametrize("pad", [(1, 2), (0, 0), (2, 1)])
def test_gradcheck_f64_tile6(pad):
    """F(6x6) forward and backward-input, float64, odd sizes (tiles cropped at both edges), groups 2.
    Weights at an initialised layer's scale 1/sqrt(9 C/g): a numerical derivative carries the forward's
    rounding error / eps (eps 1e-6), and F(6x6)'s fp64 error on unit weights (up to 1.6e-13 here, its
    bound's growth) would reach gradcheck's atol 1e-7 by itself."""
    torch.manual_seed(5)
    x = torch.randn(2, 4, 9, 8, dtype=torch.float64, requires_grad=True)
    w = (torch.randn(6, 2, 3, 3, dtype=torch.float64) / 18 ** 0.5).requires_grad_()
    b = torch.randn(6, dtype=torch.float64, requires_grad=True)
    gradcheck(lambda x, w, b: _PinnedTile.apply(x, w, b, pad, 2, 6), (x, w, b))


def shape_of(N, C, K, H, W, pad=1, groups=1):
    return ConvShape.of((N, C, H, W), (K, C // groups, 3, 3), ONE, (pad, pad), ONE, groups,
                        (H + 2 * pad - 2, W + 2 * pad - 2))


SRRESNET, SEGNET = shape_of(16, 64, 64, 96, 96), shape_of(4, 64, 64, 90, 120)
HARDNET, PIDNET, PSPNET = shape_of(256, 64, 64, 16, 16), shape_of(4, 64, 64, 64, 64), shape_of(16, 1024, 128, 9, 9)


def test_tile_choice_follows_the_measured_rule(isa):  # noqa: F811
    """F(6x6) only for float32 64-channel layers whose outputs 6x6 tiles cover exactly, with at least
    64Ki output pixels on AVX-512, never on the generic copy (docs/algo-winograd.md "F(6x6,3x3)")."""
    six = isa != "generic"
    for direction in ("conv2d_forward", "conv2d_backward_input"):
        assert (choose_tile(SRRESNET, torch.float32, direction) == 6) == six
        assert (choose_tile(SEGNET, torch.float32, direction) == 6) == (isa == "avx2")  # AVX-512: a tie
        assert choose_tile(SRRESNET, torch.float64, direction) == 4
        for layer in (HARDNET, PIDNET, PSPNET):
            assert choose_tile(layer, torch.float32, direction) == 4
    small = shape_of(4, 64, 64, 72, 72)  # 20736 pixels: F(6x6) lost on AVX-512, won with AVX2
    assert choose_tile(small) == (6 if isa == "avx2" else 4)


@pytest.mark.parametrize("layer", [shape_of(1, 64, 64, 18, 24), SEGNET])
def test_unpinned_kernel_and_op_run_the_chosen_tile(isa, layer):  # noqa: F811
    """Without tile= the kernel, and ops.conv2d (the eager C++ op), run choose_tile's tile, bit for bit."""
    torch.manual_seed(10)
    x, w = torch.randn(layer.x_shape), torch.randn(layer.w_shape) / 24
    fwd = kernels.conv2d_forward.winograd["cpu"]
    chosen, other = choose_tile(layer), 10 - choose_tile(layer)
    y = fwd(x, w, None, layer)
    assert torch.equal(y, fwd(x, w, None, layer, tile=chosen))
    assert not torch.equal(y, fwd(x, w, None, layer, tile=other))
    assert torch.equal(ops.conv2d(x, w, None, padding=1, algo="winograd", backend="cpu"), y)


def test_bad_tile_rejected_naming_it():
    x, w = torch.randn(1, 2, 9, 9), torch.randn(3, 2, 3, 3)
    for tile in (5, 8, "6"):
        with pytest.raises(ValueError, match="tile"):
            conv_kernel("cpu", FWD)(x, w, None, ONE, ONE, ONE, 1, (9, 9), None, 0.0, tile=tile)
        with pytest.raises(ValueError, match="tile"):
            conv_kernel("cpu", BWD_INPUT)(torch.randn(1, 3, 9, 9), w, (9, 9), ONE, ONE, ONE, 1, tile=tile)
    y = torch.empty(1, 3, 9, 9)  # the raw entry point checks too
    with pytest.raises(ValueError, match="tile: winograd output tile must be 4 or 6, got 5"):
        _C.conv_winograd.forward(0, list(shape_of(1, 2, 3, 9, 9)), x.data_ptr(), w.data_ptr(), 0, y.data_ptr(),
                                 0, 0.0, 5)


def test_auto_picks_winograd_by_the_measured_rule():
    """HardNet's 64->64 16x16 layer: winograd for forward and backward-input, not backward-weight;
    AlexNet conv3's 256->384 channels: backward-weight only (docs/algo-winograd.md's measurements)."""
    hardnet = _conv_algo.Layer(256, 64, 64, (3, 3), (16, 16))
    alexnet = _conv_algo.Layer(16, 256, 384, (3, 3), (13, 13))
    for direction in _conv_algo.DIRECTIONS:
        options = _conv_algo.candidates("cpu", direction, ONE, ONE, (3, 3))
        assert "winograd" in options
        weight = direction == "conv2d_backward_weight"
        assert (_conv_algo.heuristic(options, hardnet, direction) == "winograd") != weight
        assert (_conv_algo.heuristic(options, alexnet, direction) == "winograd") == weight


def test_auto_picks_winograd_for_few_tiles_backward_input():
    """Many channels out of a 64-128-channel reduction on small maps (PSPNet's 1024->128 head on 9x9,
    AlexNet conv5's 192 -> 128 per group): backward-input by winograd's few-tiles path, the forward
    not (level there); K/g 192 or maps above 16x16 neither."""
    bwd_in = "conv2d_backward_input"
    options = _conv_algo.candidates("cpu", bwd_in, ONE, ONE, (3, 3))
    pick = lambda layer, direction=bwd_in: _conv_algo.heuristic(options, layer, direction)  # noqa: E731
    assert pick(_conv_algo.Layer(16, 1024, 128, (3, 3), (9, 9))) == "winograd"
    assert pick(_conv_algo.Layer(16, 384, 256, (3, 3), (13, 13), groups=2)) == "winograd"
    assert pick(_conv_algo.Layer(16, 1024, 128, (3, 3), (9, 9)), "conv2d_forward") != "winograd"
    assert pick(_conv_algo.Layer(16, 384, 384, (3, 3), (13, 13), groups=2)) != "winograd"
    assert pick(_conv_algo.Layer(16, 1024, 128, (3, 3), (17, 17))) != "winograd"


def test_conv_plan_shows_the_per_pass_choice():
    plan = ops.conv_plan((16, 256, 13, 13), (384, 256, 3, 3), padding=1, backend="cpu")
    assert plan.backward_weight == "winograd" and plan.kernels[2] == BWD_WEIGHT.name
    assert plan.forward != "winograd" and plan.backward_input != "winograd"


# ------------------------------------------------------------------------------------ backward weight
def winograd_weight_abs(x, gy, pad, groups):
    """E_w = |G^T| (sum over images and tiles of (|A| |gy_t| |A^T|) . (|B^T| |d_t| |B|)) |G|: the
    backward-weight algorithm on absolute values, [K, C/g, 3, 3] (docs/algo-winograd.md)."""
    x, gy = x.double().abs(), gy.double().abs()
    N, C = x.shape[:2]
    K, P, Q = gy.shape[1:]
    TY, TX = -(-P // 4), -(-Q // 4)
    V = BT.abs() @ input_patches(x, pad, TY, TX) @ BT.abs().T                     # [N, C, TY, TX, 6, 6]
    gyp = gy.new_zeros(N, K, 4 * TY, 4 * TX)
    gyp[:, :, :P, :Q] = gy
    Wg = AT.abs().T @ gyp.unfold(2, 4, 4).unfold(3, 4, 4) @ AT.abs()               # [N, K, TY, TX, 6, 6]
    U = torch.einsum("ngkyxij,ngcyxij->gkcij", Wg.view(N, groups, K // groups, TY, TX, 6, 6),
                     V.view(N, groups, C // groups, TY, TX, 6, 6))
    return (G.abs().T @ U @ G.abs()).reshape(K, C // groups, 3, 3), N * TY * TX


def assert_weight_within_bound(got, x, gy, pad, groups, dtype):
    """|gw - gw_ref| <= gamma(T + 27) E_w + gamma_64(N P Q + 2) (|gy| * |x|): T tiles summed (the GEMM's
    product and T - 1 additions); 27 = 8 roundings of the x transform + 6 of the gy transform (at most
    4 exactly-weighted terms per 1-D) + 12 of the final G^T U G in double (6 terms per 1-D; counted in
    the dtype's unit roundoff, an overcount for float32) + 1 rounding to the dtype."""
    xd, gyd = x.double(), gy.double()
    ref = torch.nn.grad.conv2d_weight(xd, got.shape, gyd, 1, pad, 1, groups)
    E, T = winograd_weight_abs(x, gy, pad, groups)
    direct = torch.nn.grad.conv2d_weight(xd.abs(), got.shape, gyd.abs(), 1, pad, 1, groups)
    bound = gamma(T + 27, dtype) * E + gamma(gy.shape[0] * gy.shape[2] * gy.shape[3] + 2, torch.float64) * direct
    err = (got.double() - ref).abs()
    assert got.dtype == dtype and got.shape == ref.shape
    bad = err > bound
    assert not bad.any(), (f"{int(bad.sum())} of {err.numel()} outside the bound; worst err {err.max().item():.3g}")
    return ref


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("case", CASES)
def test_backward_weight_within_bound(case, dtype):
    N, C, H, W, K, pad, groups = case
    torch.manual_seed(8)
    x = torch.randn(N, C, H, W, dtype=dtype)
    P, Q = H + 2 * pad[0] - 2, W + 2 * pad[1] - 2
    gy = torch.randn(N, K, P, Q, dtype=dtype)
    gw = conv_kernel("cpu", BWD_WEIGHT)(x, gy, (3, 3), ONE, pad, ONE, groups)
    ref = assert_weight_within_bound(gw, x, gy, pad, groups, dtype)
    with pytest.raises(AssertionError, match="outside the bound"):  # the bound is not vacuous
        assert_weight_within_bound(ref.flip(-1).to(dtype), x, gy, pad, groups, dtype)


def test_backward_weight_many_chunks_and_each_isa(isa):  # noqa: F811
    """Enough tiles for several chunks of the tile loop (the GEMMs accumulate across chunks)."""
    torch.manual_seed(9)
    x, gy = torch.randn(4, 64, 20, 20), torch.randn(4, 64, 20, 20)  # 100 tiles, chunks of 32 (AVX-512)
    gw = conv_kernel("cpu", BWD_WEIGHT)(x, gy, (3, 3), ONE, ONE, ONE, 1)
    assert_weight_within_bound(gw, x, gy, ONE, 1, torch.float32)


def test_backward_weight_rejects_bad_input():
    x, gy = torch.randn(1, 2, 9, 9), torch.randn(1, 3, 5, 5)
    with pytest.raises(ValueError, match="weight: algo='winograd' takes 3x3"):
        conv_kernel("cpu", BWD_WEIGHT)(x, gy, (5, 5), ONE, ONE, ONE, 1)
    with pytest.raises(ValueError, match="groups"):
        conv_kernel("cpu", BWD_WEIGHT)(x, gy, (3, 3), ONE, ONE, ONE, 2)

"""StyleGAN-XL (Sauer et al. 2022), the faithful small version of NETWORKS.md #11: generator and
projected discriminator.

Not the published 102.8M-parameter ImageNet model (NETWORKS.md has no exact configuration for it and
it cannot train here). What is kept, after the reference implementation (autonomousvision/stylegan-xl:
training/networks_stylegan3_resetting.py, pg_modules/*.py, train.py):

Generator (StyleGAN3-T synthesis, as StyleGAN-XL):
- mapping: z (z_dim) normalised to unit rms; class embedding (a learned c_dim x embed_dim table, in the
  place of the reference's EfficientNet-lite0 class embeddings) -> FC + lrelu to z_dim, normalised;
  concat -> 2 FC + lrelu with learning-rate multiplier 0.01 (equalised learning rate: weights stored
  at N(0, 1/lr) and scaled at run time by lr/sqrt(fan_in)); per-class W averages (w_avg) for truncation.
- synthesis: Fourier-feature input (random frequencies in a disc, phases, a learned rotation and
  translation from w, a trainable channel mix); layers of modulated/demodulated 3x3 convolution
  (fastcnn.ops.modulated_conv2d: ONE grouped conv with groups = batch) + bias + anti-aliased leaky ReLU
  (filtered_lrelu: upfirdn2d up x2 with a Kaiser low-pass FIR, leaky ReLU 0.2 * sqrt(2), clamp 256,
  upfirdn2d down with another; fastcnn.ops.upfirdn2d = depthwise conv_transpose2d / conv2d); cutoffs,
  stopbands, sampling rates, margins and filters from StyleGAN3's layer schedule; last two layers
  critically sampled; 1x1 ToRGB; output scale 0.25.
- an 8x8 stem whose critically sampled layers are cut off, plus a 16x16 super-resolution stage
  (SuperresGenerator: head_layers new layers whose schedule continues the stem's).
Canonical (the published widths of the reference, train.py for --cfg stylegan3-t: channel_base
2 x 32768, channel_max 2 x 512, z_dim 64, w_dim 512, 2 mapping layers, --syn_layers 10 stem layers,
--head_layers 7; 1000 classes, embedding 1280-d): 8x8 -> 16x16 images, every layer 1024 channels wide.
Small: z 16, w 32, 10 classes (digits), 4 stem layers, 3 head layers, at most 16 channels, margin 2.

forward(z[N, z_dim], c=None, truncation_psi=1, truncation_cutoff=None, update_emas=False) ->
image [N, 3, 16, 16]; c is a one-hot (or soft) [N, c_dim] label, None = the average class (uniform).

Discriminator (Projected GAN / StyleGAN-XL's ProjectedDiscriminator): the image, mapped from [-1, 1]
to [0, 1] and normalised, is resized (bilinear) for a feature network (a 4-stage CNN the project trains
itself: the stylegan_xl recipe trains it as a digit classifier, then freezes it; here randomly
initialised) and projected by fixed random 1x1 convolutions (cross-channel
mixing) and feature-fusion blocks (cross-scale mixing: add, bilinear x2, 1x1 conv); the feature network
and projections are frozen (requires_grad False, eval mode). On each of the 4 scales a conditional
discriminator (SingleDiscCond): DownBlocks (spectral-norm conv k4 s2 + BatchNorm + leaky ReLU 0.2) down to
8x8, a spectral-norm conv k4 to cmap_dim, projected on the class embedding (embed + FC lrelu). Output: the
concatenated logits of all scales (hinge loss in training). DiffAugment belongs to the training loop.
Only the multi-scale discriminators are trainable: their parameters are the count.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from ._layers import FAST
from ._network import Network
from ._registry import register_model

SQRT2 = math.sqrt(2.0)


# ----------------------------------------------------------------------------------------------------
# Generator parts

class EqualizedLinear(nn.Module):
    """StyleGAN's FullyConnectedLayer: equalised learning rate (weight N(0, weight_init/lr) scaled by
    lr/sqrt(in) at run time, bias scaled by lr) and an optional leaky ReLU 0.2 with gain sqrt(2)."""

    def __init__(self, lib, in_features, out_features, activation="linear", lr_multiplier=1.0, weight_init=1.0,
                 bias_init=0.0):
        super().__init__()
        self.lib, self.activation = lib, activation
        self.weight = nn.Parameter(torch.randn(out_features, in_features) * (weight_init / lr_multiplier))
        bias = np.broadcast_to(np.asarray(bias_init, dtype=np.float32), [out_features]) / lr_multiplier
        self.bias = nn.Parameter(torch.tensor(bias.tolist()))
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x):
        x = self.lib.F.linear(x, self.weight * self.weight_gain, self.bias * self.bias_gain)
        if self.activation == "lrelu":
            x = self.lib.F.leaky_relu(x, 0.2) * SQRT2
        return x


def _rms_normalise(x):
    return x * (x.square().mean(1, keepdim=True) + 1e-8).rsqrt()


class MappingNetwork(nn.Module):
    def __init__(self, lib, z_dim, c_dim, w_dim, num_ws, embed_dim, num_layers=2, lr_multiplier=0.01,
                 w_avg_beta=0.998):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim, self.num_ws, self.w_avg_beta = z_dim, c_dim, w_dim, num_ws, w_avg_beta
        self.embed = lib.Linear(c_dim, embed_dim, bias=False)  # a class-embedding table applied to a one-hot c
        self.embed_proj = EqualizedLinear(lib, embed_dim, z_dim, activation="lrelu")
        features = [2 * z_dim] + [w_dim] * num_layers
        self.fcs = nn.ModuleList([EqualizedLinear(lib, i, o, activation="lrelu", lr_multiplier=lr_multiplier)
                                  for i, o in zip(features[:-1], features[1:])])
        self.register_buffer("w_avg", torch.zeros(c_dim, w_dim))

    def forward(self, z, c, truncation_psi=1.0, truncation_cutoff=None, update_emas=False):
        y = _rms_normalise(self.embed_proj(self.embed(c)))
        x = torch.cat([_rms_normalise(z), y], dim=1)
        for fc in self.fcs:
            x = fc(x)
        if update_emas:  # class-wise centres of W, as the reference (a soft label spreads its update)
            with torch.no_grad():
                weight = c / c.sum(1, keepdim=True)
                count = weight.sum(0).unsqueeze(1)
                mean = (weight.t().unsqueeze(2) * x.detach().unsqueeze(0)).sum(1) / count.clamp_min(1e-8)
                blend = torch.where(count > 0, torch.full_like(count, 1 - self.w_avg_beta), torch.zeros_like(count))
                self.w_avg.copy_(self.w_avg + (mean - self.w_avg) * blend)
        x = x.unsqueeze(1).repeat(1, self.num_ws, 1)
        if truncation_psi != 1:
            cutoff = self.num_ws if truncation_cutoff is None else truncation_cutoff
            centre = (c.unsqueeze(2) * self.w_avg.unsqueeze(0)).sum(1) / c.sum(1, keepdim=True)  # [N, w_dim]
            head = centre.unsqueeze(1).lerp(x[:, :cutoff], truncation_psi)
            x = torch.cat([head, x[:, cutoff:]], dim=1)
        return x


class SynthesisInput(nn.Module):
    """StyleGAN3's Fourier features with a rotation and translation predicted from w."""

    def __init__(self, lib, w_dim, channels, size, sampling_rate, bandwidth):
        super().__init__()
        self.lib, self.channels, self.size = lib, channels, int(size)
        self.sampling_rate, self.bandwidth = float(sampling_rate), float(bandwidth)
        freqs = torch.randn(channels, 2)
        radii = freqs.square().sum(dim=1, keepdim=True).sqrt()
        freqs = freqs / (radii * radii.square().exp().pow(0.25)) * bandwidth  # uniform in a disc
        self.weight = nn.Parameter(torch.randn(channels, channels))
        self.affine = EqualizedLinear(lib, w_dim, 4, weight_init=0.0, bias_init=[1, 0, 0, 0])
        self.register_buffer("freqs", freqs)
        self.register_buffer("phases", torch.rand(channels) - 0.5)

    def forward(self, w):
        t = self.affine(w)  # (r_c, r_s, t_x, t_y)
        t = t * t[:, :2].square().sum(1, keepdim=True).rsqrt()
        cos, sin, tx, ty = (t[:, i:i + 1] for i in range(4))  # [N, 1] each
        fx, fy = self.freqs[:, 0], self.freqs[:, 1]  # [C]
        # the reference's freqs @ (m_r @ m_t)[:2]: rotate the frequencies, shift the phases
        phases = self.phases + fx * (-cos * tx + sin * ty) + fy * (-sin * tx - cos * ty)  # [N, C]
        rx, ry = fx * cos + fy * sin, fy * cos - fx * sin
        amplitudes = (1 - ((rx.square() + ry.square()).sqrt() - self.bandwidth)
                      / (self.sampling_rate / 2 - self.bandwidth)).clamp(0, 1)
        n = self.size  # sample positions of affine_grid(align_corners=False), scaled by size / sampling rate
        grid = ((torch.arange(n, dtype=w.dtype, device=w.device) * 2 + 1) / n - 1) * (0.5 * n / self.sampling_rate)
        gx, gy = grid.view(1, 1, n, 1), grid.view(1, n, 1, 1)
        x = gx * rx[:, None, None] + gy * ry[:, None, None] + phases[:, None, None]  # [N, H, W, C]
        x = torch.sin(x * (2 * math.pi)) * amplitudes[:, None, None]
        x = self.lib.F.linear(x, self.weight / math.sqrt(self.channels))
        return x.permute(0, 3, 1, 2).contiguous()


def lowpass_filter(numtaps, cutoff, width, fs):
    """Kaiser-windowed low-pass FIR (scipy.signal.firwin), None for the identity."""
    if numtaps == 1:
        return None
    import scipy.signal

    return torch.as_tensor(scipy.signal.firwin(numtaps=numtaps, cutoff=cutoff, width=width, fs=fs), dtype=torch.float32)


class SynthesisLayer(nn.Module):
    """Modulated conv + bias + filtered leaky ReLU (StyleGAN3 SynthesisLayer, radial filters off)."""

    def __init__(self, lib, w_dim, is_torgb, is_critically_sampled, in_channels, out_channels, in_size, out_size,
                 in_sampling_rate, out_sampling_rate, in_cutoff, out_cutoff, in_half_width, out_half_width,
                 conv_kernel=3, filter_size=6, lrelu_upsampling=2, conv_clamp=256, magnitude_ema_beta=0.999):
        super().__init__()
        self.lib, self.is_torgb, self.is_critically_sampled = lib, is_torgb, is_critically_sampled
        self.in_channels, self.out_channels = in_channels, out_channels
        self.out_sampling_rate, self.out_cutoff, self.out_half_width = out_sampling_rate, out_cutoff, out_half_width
        self.in_size, self.out_size = int(in_size), int(out_size)
        self.conv_kernel = 1 if is_torgb else conv_kernel
        self.conv_clamp, self.magnitude_ema_beta = conv_clamp, magnitude_ema_beta
        self.affine = EqualizedLinear(lib, w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, self.conv_kernel, self.conv_kernel))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.register_buffer("magnitude_ema", torch.ones(()))

        tmp_rate = max(in_sampling_rate, out_sampling_rate) * (1 if is_torgb else lrelu_upsampling)
        self.up_factor = int(round(tmp_rate / in_sampling_rate))
        self.down_factor = int(round(tmp_rate / out_sampling_rate))
        up_taps = filter_size * self.up_factor if self.up_factor > 1 and not is_torgb else 1
        down_taps = filter_size * self.down_factor if self.down_factor > 1 and not is_torgb else 1
        self.register_buffer("up_filter", lowpass_filter(up_taps, in_cutoff, in_half_width * 2, tmp_rate))
        self.register_buffer("down_filter", lowpass_filter(down_taps, out_cutoff, out_half_width * 2, tmp_rate))
        pad_total = (self.out_size - 1) * self.down_factor + 1  # size before downsampling
        pad_total -= (self.in_size + self.conv_kernel - 1) * self.up_factor  # size after upsampling
        pad_total += up_taps + down_taps - 2  # what the filters remove
        pad_lo = (pad_total + self.up_factor) // 2  # the symmetric interpretation (StyleGAN3 appendix C.3)
        self.padding = [pad_lo, pad_total - pad_lo] * 2  # x0, x1, y0, y1
        if up_taps == 1 and any(self.padding):
            raise ValueError(f"out_size: a layer without an upsampling filter must keep the size, got "
                             f"{self.in_size} -> {self.out_size}")

    def forward(self, x, w, update_emas=False):
        F = self.lib.F
        if update_emas:
            with torch.no_grad():
                magnitude = x.detach().square().mean()
                self.magnitude_ema.copy_(magnitude.lerp(self.magnitude_ema, self.magnitude_ema_beta))
        styles = self.affine(w)
        if self.is_torgb:
            styles = styles * (1 / math.sqrt(self.in_channels * self.conv_kernel ** 2))
        x = F.modulated_conv2d(x, self.weight, styles, demodulate=not self.is_torgb, padding=self.conv_kernel - 1,
                               input_gain=self.magnitude_ema.rsqrt())
        return self.filtered_lrelu(x)

    def filtered_lrelu(self, x):
        """bias, upfirdn2d up (gain up^2), leaky ReLU 0.2 x sqrt(2) (none for ToRGB), clamp, upfirdn2d down."""
        F = self.lib.F
        x = x + self.bias.view(1, -1, 1, 1)
        if self.up_filter is not None:  # (without one, ToRGB, the padding is 0: nothing to do)
            x = F.upfirdn2d(x, self.up_filter, up=self.up_factor, padding=self.padding, gain=self.up_factor ** 2)
        if not self.is_torgb:
            x = F.leaky_relu(x, 0.2) * SQRT2
        if self.conv_clamp is not None:
            x = x.clamp(-self.conv_clamp, self.conv_clamp)
        if self.down_filter is not None:
            x = F.upfirdn2d(x, self.down_filter, down=self.down_factor)
        return x


def _layer_schedule(first_cutoff, first_stopband, resolution, num_layers, num_critical, channel_base, channel_max,
                    margin, first_rate=None, last_stopband_rel=2 ** 0.3):
    """StyleGAN3's geometric progression of cutoffs and stopbands -> (cutoffs, sampling rates, half widths,
    sizes, channels) for layers 0..num_layers (the last is ToRGB). first_rate: the sampling rate a
    super-resolution head starts from (the stem's last)."""
    last_cutoff = resolution / 2
    last_stopband = last_cutoff * last_stopband_rel
    exponents = np.minimum(np.arange(num_layers + 1) / (num_layers - num_critical), 1)
    cutoffs = first_cutoff * (last_cutoff / first_cutoff) ** exponents
    stopbands = first_stopband * (last_stopband / first_stopband) ** exponents
    rates = np.exp2(np.ceil(np.log2(np.minimum(stopbands * 2, resolution))))
    if first_rate is not None:
        rates[0] = first_rate
    half_widths = np.maximum(stopbands, rates / 2) - cutoffs
    sizes = rates + margin * 2
    sizes[-2:] = resolution
    channels = np.rint(np.minimum((channel_base / 2) / cutoffs, channel_max))
    return cutoffs, rates, half_widths, sizes, channels


class SynthesisNetwork(nn.Module):
    """The 8x8 stem (critically sampled layers cut off, as SuperresGenerator does) + a x2 head to 16x16."""

    def __init__(self, lib, w_dim, stem_resolution, up_factor, stem_layers, head_layers, channel_base, channel_max,
                 margin, img_channels=3, num_critical=2, output_scale=0.25):
        super().__init__()
        self.output_scale = output_scale
        c, r, h, s, ch = _layer_schedule(2, 2 ** 2.1, stem_resolution, stem_layers, num_critical, channel_base,
                                         channel_max, margin)
        self.input = SynthesisInput(lib, w_dim, int(ch[0]), int(s[0]), r[0], c[0])
        layers = []
        for idx in range(stem_layers - num_critical):  # the stem without its critically sampled end
            prev = max(idx - 1, 0)
            layers.append(SynthesisLayer(lib, w_dim, False, False, int(ch[prev]), int(ch[idx]), s[prev], s[idx],
                                         r[prev], r[idx], c[prev], c[idx], h[prev], h[idx]))
        last = layers[-1]
        resolution = stem_resolution * up_factor
        # the head's schedule starts at the last stem layer's output (compute_superres_filterparams)
        c, r, h, s, ch = _layer_schedule(last.out_cutoff, last.out_half_width + last.out_cutoff, resolution,
                                         head_layers, num_critical, channel_base, channel_max, margin,
                                         first_rate=last.out_sampling_rate)
        ch[0], ch[-1] = last.out_channels, img_channels
        for idx in range(head_layers + 1):
            prev = max(idx - 1, 0)
            layers.append(SynthesisLayer(lib, w_dim, idx == head_layers, idx >= head_layers - num_critical,
                                         int(ch[prev]), int(ch[idx]), s[prev], s[idx], r[prev], r[idx], c[prev],
                                         c[idx], h[prev], h[idx]))
        self.layers = nn.ModuleList(layers)
        self.num_ws = len(layers) + 1
        self.resolution = resolution

    def forward(self, ws, update_emas=False):
        x = self.input(ws[:, 0])
        for i, layer in enumerate(self.layers):
            x = layer(x, ws[:, i + 1], update_emas=update_emas)
        return x * self.output_scale


class StyleGANXLGenerator(Network):
    name = "stylegan_xl_generator"

    def __init__(self, z_dim=64, w_dim=512, c_dim=1000, embed_dim=1280, stem_layers=10, head_layers=7,
                 channel_base=65536, channel_max=1024, margin=10, lib=FAST, size="canonical"):
        super().__init__((z_dim,), lib, size=size)
        self.synthesis = SynthesisNetwork(lib, w_dim, 8, 2, stem_layers, head_layers, channel_base, channel_max,
                                          margin)
        self.mapping = MappingNetwork(lib, z_dim, c_dim, w_dim, self.synthesis.num_ws, embed_dim)
        self.c_dim = c_dim
        self.output_shape = (3, self.synthesis.resolution, self.synthesis.resolution)

    def forward(self, z, c=None, truncation_psi=1.0, truncation_cutoff=None, update_emas=False):
        if c is None:  # the average class
            c = z.new_full((z.shape[0], self.c_dim), 1.0 / self.c_dim)
        ws = self.mapping(z, c, truncation_psi, truncation_cutoff, update_emas)
        return self.synthesis(ws, update_emas=update_emas)


@register_model("stylegan_xl_generator", paper="Sauer et al. 2022, StyleGAN-XL (faithful small version: 8x8 stem + "
                                               "16x16 super-resolution stage; not the 102.8M model)",
                canonical_params=152_722_503, task="class-conditional 16x16 image generation")
def stylegan_xl_generator(size="canonical", lib=FAST):
    if size == "canonical":
        return StyleGANXLGenerator(lib=lib, size=size)
    return StyleGANXLGenerator(z_dim=16, w_dim=32, c_dim=10, embed_dim=16, stem_layers=4, head_layers=3,
                               channel_base=256, channel_max=16, margin=2, lib=lib, size=size)


# ----------------------------------------------------------------------------------------------------
# Projected discriminator parts

def _conv_block(lib, c_in, c_out, stride):
    return [lib.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False), lib.BatchNorm2d(c_out), lib.ReLU()]


class FeatureNetwork(nn.Module):
    """The frozen feature network: 4 stages at 1/4, 1/8, 1/16, 1/32 of its input (in the place of the
    reference's pretrained EfficientNet-lite0, whose stage widths the canonical size takes)."""

    def __init__(self, lib, channels):
        super().__init__()
        c0, c1, c2, c3 = channels
        self.layer0 = lib.Sequential(*_conv_block(lib, 3, c0 // 2, 2), *_conv_block(lib, c0 // 2, c0, 2))
        self.layer1 = lib.Sequential(*_conv_block(lib, c0, c1, 2))
        self.layer2 = lib.Sequential(*_conv_block(lib, c1, c2, 2))
        self.layer3 = lib.Sequential(*_conv_block(lib, c2, c3, 2))

    def forward(self, x):
        out0 = self.layer0(x)
        out1 = self.layer1(out0)
        out2 = self.layer2(out1)
        return [out0, out1, out2, self.layer3(out2)]


class FeatureFusion(nn.Module):
    """Cross-scale mixing (Projected GAN's FeatureFusionBlock): add the finer map, bilinear x2
    (align_corners=True), 1x1 conv (halving the channels when expand)."""

    def __init__(self, lib, features, expand):
        super().__init__()
        self.lib = lib
        self.out_conv = lib.Conv2d(features, features // 2 if expand else features, 1)

    def forward(self, x, skip=None):
        if skip is not None:
            x = x + skip
        x = self.lib.F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)
        return self.out_conv(x)


class RandomProjection(nn.Module):
    """Feature network + fixed random projections: cross-channel mixing (1x1 convs to cout, 2cout, 4cout,
    8cout) and cross-scale mixing (FeatureFusion from the coarsest scale up). Output channels
    [cout, cout, 2cout, 4cout] at 1/2, 1/4, 1/8, 1/16 of the input."""

    def __init__(self, lib, backbone_channels, cout):
        super().__init__()
        self.pretrained = FeatureNetwork(lib, backbone_channels)
        ccm = [cout, cout * 2, cout * 4, cout * 8]
        self.ccm = nn.ModuleList([lib.Conv2d(c, o, 1) for c, o in zip(backbone_channels, ccm)])
        self.csm = nn.ModuleList([FeatureFusion(lib, ccm[0], False), FeatureFusion(lib, ccm[1], True),
                                  FeatureFusion(lib, ccm[2], True), FeatureFusion(lib, ccm[3], True)])
        self.channels = [cout, cout, cout * 2, cout * 4]

    def forward(self, x):
        mixed = [proj(f) for proj, f in zip(self.ccm, self.pretrained(x))]
        out3 = self.csm[3](mixed[3])
        out2 = self.csm[2](out3, mixed[2])
        out1 = self.csm[1](out2, mixed[1])
        out0 = self.csm[0](out1, mixed[0])
        return [out0, out1, out2, out3]


class DownBlock(nn.Module):
    """spectral-norm conv k4 s2 p1 + BatchNorm + leaky ReLU 0.2."""

    def __init__(self, lib, c_in, c_out):
        super().__init__()
        self.main = lib.Sequential(lib.spectral_norm(lib.Conv2d(c_in, c_out, 4, 2, 1)), lib.BatchNorm2d(c_out),
                                   lib.LeakyReLU(0.2))

    def forward(self, x):
        return self.main(x)


# Projected GAN's per-resolution widths (nfc_midas), scaled by `width` / 512 for the small size.
_NFC = {4: 512, 8: 512, 16: 256, 32: 128, 64: 64, 128: 64, 256: 32, 512: 16, 1024: 8}


class ConditionalDisc(nn.Module):
    """SingleDiscCond: DownBlocks from the feature map's (nominal) size to 8x8, spectral-norm conv k4 to
    cmap_dim, projected on the class embedding (embed + FC lrelu), / sqrt(cmap_dim)."""

    def __init__(self, lib, nc, start_sz, c_dim, embed_dim, cmap_dim, width, end_sz=8):
        super().__init__()
        self.lib, self.cmap_dim = lib, cmap_dim
        nfc = {k: max(1, v * width // 512) for k, v in _NFC.items()}
        start_sz = min(_NFC, key=lambda k: abs(k - start_sz))  # nearest tabulated size, as the reference
        nfc[start_sz] = nc
        blocks = []
        while start_sz > end_sz:
            blocks.append(DownBlock(lib, nfc[start_sz], nfc[start_sz // 2]))
            start_sz //= 2
        self.main = lib.Sequential(*blocks)
        self.cls = lib.spectral_norm(lib.Conv2d(nfc[end_sz], cmap_dim, 4, 1, 0, bias=False))
        self.embed = lib.Linear(c_dim, embed_dim, bias=False)
        self.embed_proj = EqualizedLinear(lib, embed_dim, cmap_dim, activation="lrelu")

    def forward(self, x, c):
        out = self.cls(self.main(x))
        cmap = self.embed_proj(self.embed(c))
        return (out * cmap[:, :, None, None]).sum(dim=1, keepdim=True) * (1 / math.sqrt(self.cmap_dim))


class StyleGANXLDiscriminator(Network):
    name = "stylegan_xl_discriminator"
    # The feature network's normalisation (ImageNet statistics, as EfficientNet's).
    MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)

    def __init__(self, resolution=16, feature_size=224, backbone_channels=(24, 40, 112, 320), cout=64,
                 c_dim=1000, embed_dim=1280, cmap_dim=64, width=512, lib=FAST, size="canonical"):
        super().__init__((3, resolution, resolution), lib, size=size)
        self.c_dim, self.feature_size = c_dim, feature_size
        self.feature_network = RandomProjection(lib, list(backbone_channels), cout)
        self.feature_network.requires_grad_(False)
        sizes = [feature_size // 2 ** (i + 1) for i in range(4)]
        self.discs = nn.ModuleList([ConditionalDisc(lib, ch, sz, c_dim, embed_dim, cmap_dim, width)
                                    for ch, sz in zip(self.feature_network.channels, sizes)])
        self.output_shape = (sum(self._logit_side(sz) ** 2 for sz in sizes),)
        self.train()

    @staticmethod
    def _logit_side(size, end_sz=8):
        while size > end_sz:
            size //= 2
        return size - 3  # the k4 valid conv

    def train(self, mode: bool = True):
        """The feature network and projections stay in eval mode (frozen), as the reference."""
        super().train(mode)
        self.feature_network.train(False)
        return self

    def feature_input(self, x):
        """[-1, 1] images -> the feature network's input: [0, 1], its normalisation, its size (a recipe
        that trains the feature network itself feeds it the same way)."""
        mean = x.new_tensor(self.MEAN).view(1, 3, 1, 1)
        std = x.new_tensor(self.STD).view(1, 3, 1, 1)
        x = ((x + 1) / 2 - mean) / std
        return self.lib.F.interpolate(x, size=self.feature_size, mode="bilinear", align_corners=False)

    def forward(self, x, c=None):
        if c is None:  # the average class
            c = x.new_full((x.shape[0], self.c_dim), 1.0 / self.c_dim)
        features = self.feature_network(self.feature_input(x))
        return torch.cat([disc(f, c).flatten(1) for disc, f in zip(self.discs, features)], dim=1)


@register_model("stylegan_xl_discriminator", paper="Sauer et al. 2022, StyleGAN-XL projected discriminator (faithful "
                                                   "small version; feature network frozen, trained by the project)",
                canonical_params=17_843_648, task="16x16 image + class -> multi-scale real/fake logits")
def stylegan_xl_discriminator(size="canonical", lib=FAST):
    if size == "canonical":
        return StyleGANXLDiscriminator(lib=lib, size=size)
    return StyleGANXLDiscriminator(feature_size=128, backbone_channels=(8, 16, 32, 64), cout=8, c_dim=10, embed_dim=16,
                                   cmap_dim=16, width=32, lib=lib, size=size)

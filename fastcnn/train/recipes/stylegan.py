"""StyleGAN-XL (Sauer et al. 2022), the zoo's faithful small version, class-conditional on 16x16 digits,
judged like the DCGAN (the project's LeNet: the share of samples it puts in the class asked for, and
the Frechet distance in its features to the test digits, against the DCGAN's samples).

What the reference (autonomousvision/stylegan-xl: train.py, training/loss.py ProjectedGANLoss,
pg_modules/) does and what is kept here:
- losses: the projected GAN hinge loss, D: relu(1 - D(real)) + relu(1 + D(G(z))), G: -D(G(z)), on the
  concatenated logits of the four scales; no R1 penalty (the reference sets none for the projected
  discriminator) and no path-length regulariser.
- DiffAugment (color, translation 1/8, cutout 1/2) on real and generated images before D, both phases.
- Adam betas (0, 0.99), eps 1e-8, G lr 0.0025, D lr 0.002; an exponential moving average of G
  (ema_kimg = batch * 10 / 32, ramp-up 0.05) whose samples are the ones measured; the mapping network's
  class centres (w_avg) and the layers' input magnitudes updated in the D phase, as the reference.
- the projected discriminator's feature network: the reference projects onto a pretrained
  EfficientNet-lite0 (and DeiT for classifier guidance). No pretrained network exists offline, so the
  first `feature_share` of the steps train the zoo's 4-stage feature CNN as a digit classifier
  (cross-entropy, a linear head on its pooled stages) on the training digits; it is then frozen, as
  the pretrained one is. The cross-channel / cross-scale projections stay fixed random 1x1 convs, as
  in the reference. Not kept: classifier guidance (it would optimise G against a classifier, and the
  only one here is the LeNet that judges the samples), progressive growing of the super-resolution
  stages (there is one stage), the initial blur of D's input.
"""
from __future__ import annotations

import copy

import torch

from ... import data
from .. import optim
from .classify import random_shift
from .generative import _JudgedByLeNet


def diff_augment(x: torch.Tensor, translation: float = 0.125, cutout: float = 0.5) -> torch.Tensor:
    """DiffAugment (Zhao et al. 2020) 'color,translation,cutout' on [N, C, H, W] images in [-1, 1]:
    differentiable, the same for real and generated images, random per sample (global torch RNG)."""
    n, _, h, w = x.shape
    x = x + (torch.rand(n, 1, 1, 1, dtype=x.dtype, device=x.device) - 0.5)                 # brightness
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (torch.rand(n, 1, 1, 1, dtype=x.dtype, device=x.device) * 2) + mean   # saturation
    mean = x.mean(dim=[1, 2, 3], keepdim=True)
    x = (x - mean) * (torch.rand(n, 1, 1, 1, dtype=x.dtype, device=x.device) + 0.5) + mean  # contrast
    x = random_shift(x, int(h * translation + 0.5))                                         # translation
    side = int(h * cutout + 0.5)                                                            # cutout
    cy = torch.randint(0, h + (1 - side % 2), (n, 1, 1))
    cx = torch.randint(0, w + (1 - side % 2), (n, 1, 1))
    rows = torch.arange(h).view(1, h, 1)
    cols = torch.arange(w).view(1, 1, w)
    keep = ~(((rows - cy + side // 2) >= 0) & ((rows - cy + side // 2) < side)
             & ((cols - cx + side // 2) >= 0) & ((cols - cx + side // 2) < side))
    return x * keep.unsqueeze(1).to(dtype=x.dtype, device=x.device)


def one_hot(labels: torch.Tensor, classes: int) -> torch.Tensor:
    return torch.eye(classes)[labels.cpu()]


class StyleGANXLTask(_JudgedByLeNet):
    name = "stylegan_xl"
    networks = ("stylegan_xl_generator", "stylegan_xl_discriminator")
    metric_name = "frechet_distance_lenet"
    higher_is_better = False
    target_text = ("Frechet distance (LeNet features, to test digits) of the G-EMA's class-conditional samples "
                   "below the DCGAN's; LeNet's accuracy on the class asked for reported beside it")
    batch_size, steps = 64, 800     # ~0.42 s a GAN step on 2 cores: one 6-minute lock hold
    supports_ddp = False            # D runs three times per step, the feature phase trains a frozen part
    g_lr, d_lr, betas, eps = 0.0025, 0.002, (0.0, 0.99), 1e-8
    feature_share, feature_lr = 0.1, 2e-3
    ema_rampup = 0.05

    def __init__(self, settings):
        super().__init__(settings)
        G = self.build("stylegan_xl_generator", key="G")
        D = self.build("stylegan_xl_discriminator", key="D")
        self.classes = G.c_dim
        c, h, _ = D.input_shape
        self.splits = data.digits(size=h, channels=c, seed=settings.seed)
        self.train_set = self.splits.train
        ema = copy.deepcopy(G).eval().requires_grad_(False)
        self.nets["G_ema"] = ema
        backbone = D.feature_network.pretrained
        width = sum(conv.in_channels for conv in D.feature_network.ccm)   # the 4 stages' widths
        self.nets["feature_head"] = self.lib.Linear(width, self.classes).to(settings.device)
        self.feature_steps = max(1, int(self.steps * self.feature_share))
        self.optimizers["features"] = optim.adam(list(backbone.parameters())
                                                       + list(self.nets["feature_head"].parameters()),
                                                       lr=self.feature_lr)
        self.optimizers["G"] = optim.adam(G.parameters(), lr=self.g_lr, betas=self.betas, eps=self.eps)
        self.optimizers["D"] = optim.adam([p for p in D.parameters() if p.requires_grad], lr=self.d_lr,
                                                betas=self.betas, eps=self.eps)
        self.ema_kimg = self.batch_size * 10 / 32
        self.details.update(feature_network_steps=self.feature_steps,
                            feature_network="the zoo's 4-stage CNN trained here as a digit classifier, then frozen")

    # -- the feature network (what D projects onto) ----------------------------------------------
    def feature_logits(self, x):
        D = self.nets["D"]
        stages = D.feature_network.pretrained(D.feature_input(x))
        pooled = torch.cat([self.F.adaptive_avg_pool2d(f, 1).flatten(1) for f in stages], dim=1)
        return self.nets["feature_head"](pooled)

    def feature_step(self, x, y):
        backbone = self.nets["D"].feature_network.pretrained
        backbone.requires_grad_(True).train(True)
        opt = self.optimizers["features"]
        opt.zero_grad(set_to_none=True)
        loss = self.F.cross_entropy(self.feature_logits(random_shift(x, 2)), y)
        loss.backward()
        opt.step()
        backbone.requires_grad_(False).train(False)
        return {"loss": loss.item(), "feature_loss": loss.item()}

    # -- the GAN -------------------------------------------------------------------------------
    def random_classes(self, n, generator=None):
        labels = torch.randint(0, self.classes, (n,), generator=generator)
        return labels, one_hot(labels, self.classes).to(self.s.device)

    def z(self, n, generator=None):
        return torch.randn(n, *self.nets["G"].input_shape, generator=generator).to(self.s.device)

    def d(self, x, c):
        return self.fwd["D"](diff_augment(x), c)

    def step(self, batch, step):
        x, y = (b.to(self.s.device) for b in batch)
        x = x * 2 - 1
        if step < self.feature_steps:
            return self.feature_step(x, y)
        G, D = self.fwd["G"], self.nets["D"]
        n = x.shape[0]
        trainable = [p for p in D.parameters() if p.requires_grad]
        # G phase: -D(G(z)); D's weights get no gradient
        for p in trainable:
            p.requires_grad_(False)
        _, c = self.random_classes(n)
        oG = self.optimizers["G"]
        oG.zero_grad(set_to_none=True)
        g_loss = -self.d(G(self.z(n), c), c).mean()
        g_loss.backward()
        oG.step()
        for p in trainable:
            p.requires_grad_(True)
        # D phase: hinge on real and generated (the generator's running statistics update here)
        with torch.no_grad():
            _, c_fake = self.random_classes(n)
            fake = G(self.z(n), c_fake, update_emas=True)
        oD = self.optimizers["D"]
        oD.zero_grad(set_to_none=True)
        loss_fake = self.F.relu(1 + self.d(fake, c_fake)).mean()
        loss_real = self.F.relu(1 - self.d(x, one_hot(y, self.classes).to(x.device))).mean()
        d_loss = loss_fake + loss_real
        d_loss.backward()
        oD.step()
        self.update_ema(step)
        return {"loss": d_loss.item() + g_loss.item(), "d_loss": d_loss.item(), "g_loss": g_loss.item()}

    @torch.no_grad()
    def update_ema(self, step):
        seen = (step + 1 - self.feature_steps) * self.batch_size
        ema_nimg = min(self.ema_kimg * 1000, seen * self.ema_rampup)
        beta = 0.5 ** (self.batch_size / max(ema_nimg, 1e-8))
        G, ema = self.nets["G"], self.nets["G_ema"]
        for p, q in zip(G.parameters(), ema.parameters()):
            q.copy_(p.lerp(q, beta))
        for b, q in zip(G.buffers(), ema.buffers()):
            q.copy_(b)

    def train_mode(self, on=True):
        super().train_mode(on)
        self.nets["G_ema"].eval()

    # -- samples and the metric ----------------------------------------------------------------
    def sample(self, n, seed=0, truncation_psi=1.0):
        """n samples of the G-EMA, classes 0..9 in turn, as ([n, 3, 16, 16] in [0, 1], labels)."""
        g = torch.Generator().manual_seed(seed)
        labels = torch.arange(n) % self.classes
        z = self.z(n, g)
        c = one_hot(labels, self.classes).to(self.s.device)
        out = torch.cat([self.nets["G_ema"](z[i:i + 250], c[i:i + 250], truncation_psi=truncation_psi)
                         for i in range(0, n, 250)])
        return ((out + 1) / 2).clamp(0, 1).cpu(), labels

    def feature_accuracy(self) -> float:
        x, y = self.splits.test[:]
        pred = self.feature_logits(x.to(self.s.device) * 2 - 1).argmax(1).cpu()
        return float((pred == y).float().mean())

    def set_target(self):
        if self.target is None:
            from ..reference import trained
            dcgan = trained("dcgan", self.s)
            self.target = dcgan.judge(dcgan.sample(self.samples_for_metric, seed=1), "gan_samples")
            self.details["dcgan_frechet_distance_lenet"] = self.target
            self.details["dcgan_lenet_confident_share"] = dcgan.details["gan_samples_lenet_confident_share"]

    def evaluate(self):
        self.set_target()
        images, labels = self.sample(self.samples_for_metric, seed=1)
        return self.judge(images, "samples", labels)

    def plots(self, out_dir):
        from ..plots import image_grid
        self.details["feature_network_test_accuracy"] = self.feature_accuracy()
        images, _ = self.sample(80, seed=2)
        order = torch.arange(80).reshape(8, 10).t().reshape(-1)   # one row per class
        return [image_grid(images[order], out_dir, "samples.png",
                           "StyleGAN-XL (G-EMA) samples, one row per class asked for", columns=8),
                image_grid(self.interpolation(), out_dir, "interpolation.png",
                           "interpolation between two latents (rows: classes 0, 3, 8; last row: class 3 -> 8)",
                           columns=10)]

    def interpolation(self, steps: int = 10) -> torch.Tensor:
        """Rows of G-EMA images along z0 -> z1 (W = mapping of the linear blend) for a few classes, and
        one row along class 3 -> class 8 at a fixed z."""
        g = torch.Generator().manual_seed(3)
        z0, z1 = self.z(1, g), self.z(1, g)
        t = torch.linspace(0, 1, steps, device=z0.device).view(-1, 1)
        zs = z0.lerp(z1, t)
        rows = []
        for cls in (0, 3, 8):
            c = one_hot(torch.full((steps,), cls), self.classes).to(z0.device)
            rows.append(self.nets["G_ema"](zs, c))
        c3, c8 = (one_hot(torch.full((steps,), k), self.classes).to(z0.device) for k in (3, 8))
        rows.append(self.nets["G_ema"](z0.expand(steps, -1), c3.lerp(c8, t)))
        return ((torch.cat(rows) + 1) / 2).clamp(0, 1).cpu()

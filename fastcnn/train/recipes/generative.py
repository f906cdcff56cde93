"""Generative models: the VAE (ELBO) and DCGAN (minimax or non-saturating loss), both judged by the
project's own trained LeNet (sample classes; Frechet distance in its 50-d features)."""
from __future__ import annotations

import numpy as np
import torch

from ... import data
from .. import optim
from ..task import Option, Task
from .classify import as_input, digits_for


def to_lenet(images: torch.Tensor) -> torch.Tensor:
    """[N, C, H, W] or flat images in [0, 1] -> LeNet's [N, 1, 28, 28] (bilinear resize on numpy)."""
    from ...data._resize import resize_stack

    n = images.shape[0]
    if images.dim() == 2:
        side = int(round(images.shape[1] ** 0.5))
        images = images.reshape(n, 1, side, side)
    gray = images.detach().float().mean(1).cpu().numpy()
    return torch.from_numpy(resize_stack(gray, 28))[:, None]


def lenet_features(lenet, x: torch.Tensor) -> torch.Tensor:
    """LeNet's penultimate activations (the 50-d FC + ReLU output)."""
    h = lenet.features(x)
    layers = list(lenet.classifier)
    last = max(i for i, m in enumerate(layers) if isinstance(m, torch.nn.Linear))
    for m in layers[:last]:
        h = m(h)
    return h


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2)) between two feature sets."""
    from scipy import linalg

    mu_a, mu_b = a.mean(0), b.mean(0)
    sa, sb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root, _ = linalg.sqrtm(sa @ sb, disp=False)
    root = root.real
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(sa + sb - 2 * root))


class _JudgedByLeNet(Task):
    samples_for_metric = 1000

    def lenet(self):
        from ..reference import trained
        if not hasattr(self, "_lenet"):
            self._lenet = trained("lenet", self.s).nets["model"].to(self.s.device).eval()
        return self._lenet

    def real_features(self) -> np.ndarray:
        if not hasattr(self, "_real"):
            test = data.digits(size=28, seed=self.s.seed).test[:][0]
            self._real = lenet_features(self.lenet(), test.to(self.s.device)).cpu().numpy()
        return self._real

    def judge(self, samples01: torch.Tensor, prefix: str, labels: torch.Tensor = None) -> float:
        """Classes LeNet gives the samples, its confidence, and their Frechet distance to test digits;
        for samples of a conditional generator (`labels`: the classes asked for), the share LeNet
        puts in the class asked for."""
        x = to_lenet(samples01).to(self.s.device)
        lenet = self.lenet()
        prob = self.F.softmax(lenet(x), dim=1)
        counts = torch.bincount(prob.argmax(1), minlength=10).tolist()
        fd = frechet_distance(lenet_features(lenet, x).cpu().numpy(), self.real_features())
        self.details[f"{prefix}_lenet_class_counts"] = counts
        self.details[f"{prefix}_lenet_confident_share"] = float((prob.max(1).values > 0.9).float().mean())
        self.details[f"{prefix}_lenet_mean_confidence"] = float(prob.max(1).values.mean())
        if labels is not None:
            self.details[f"{prefix}_lenet_class_accuracy"] = float((prob.argmax(1).cpu() == labels.cpu()).float().mean())
        self.details[f"{prefix}_frechet_distance_lenet"] = fd
        return fd


class VAETask(_JudgedByLeNet):
    """Kingma & Welling: BCE reconstruction (summed over pixels) + KL(q(z|x) || N(0, I)), Adam."""
    name = "vae"
    metric_name = "test_neg_elbo_nats"
    higher_is_better = False
    target_text = ("negative ELBO per test digit below the reconstruction cost of the mean training digit "
                   "(a model that ignores its input); samples classified by the trained LeNet")
    batch_size, steps = 64, 2500
    lr = 1e-3

    def __init__(self, settings):
        super().__init__(settings)
        net = self.build("vae")
        self.splits = digits_for(net.input_shape, settings.seed)
        self.train_set = self.splits.train
        self.optimizers["model"] = optim.adam(net.parameters(), lr=self.lr)
        x = self.splits.train[:][0].flatten(1)
        test = self.splits.test[:][0].flatten(1)
        mean = x.mean(0, keepdim=True).clamp(1e-4, 1 - 1e-4).expand_as(test)
        self.target = float(self.F.binary_cross_entropy(mean, test, reduction="sum")) / len(test)
        self.details["mean_image_bce_nats"] = self.target

    def neg_elbo(self, x, out):
        rec, mu, logvar = out
        n = x.shape[0]
        bce = self.F.binary_cross_entropy(rec.reshape(n, -1), x.reshape(n, -1), reduction="sum")
        kl = -0.5 * (1 + logvar - mu ** 2 - logvar.exp()).sum()
        return (bce + kl) / n

    def step(self, batch, step):
        x, _ = batch
        opt = self.optimizers["model"]
        opt.zero_grad(set_to_none=True)
        x = as_input(x, self.nets["model"].input_shape)
        loss = self.neg_elbo(x, self.fwd["model"](x))
        loss.backward()
        opt.step()
        return {"loss": loss.item()}

    def evaluate(self):
        x = as_input(self.splits.test[:][0].to(self.s.device), self.nets["model"].input_shape)
        return float(self.neg_elbo(x, self.nets["model"](x)))

    def latent_size(self) -> int:
        net = self.nets["model"]
        x = torch.zeros(1, *net.input_shape, device=self.s.device)
        return net(x)[1].shape[1]

    def sample(self, n: int, seed: int = 0) -> torch.Tensor:
        """n decoded draws z ~ N(0, I) as [n, 1, S, S] in [0, 1]."""
        g = torch.Generator().manual_seed(seed)
        z = torch.randn(n, self.latent_size(), generator=g).to(self.s.device)
        out = self.nets["model"].decode(z)
        n_pix = out[0].numel()
        side = int(round(n_pix ** 0.5))
        return out.reshape(n, 1, side, side).cpu()

    def final_details(self):
        self.judge(self.sample(self.samples_for_metric, seed=1), "samples")

    def plots(self, out_dir):
        from ..plots import image_grid
        self.final_details()
        x = self.splits.test[:16][0]
        rec = self.nets["model"](as_input(x.to(self.s.device), self.nets["model"].input_shape))[0].cpu()
        return [image_grid(self.sample(64, seed=2), out_dir, "samples.png", "VAE samples z ~ N(0, I)", columns=16),
                image_grid(torch.cat([x, rec.reshape(x.shape)]), out_dir, "reconstructions.png",
                           "rows: test digits, VAE reconstructions", columns=16)]


def dcgan_init(net: torch.nn.Module) -> None:
    """The paper's initialisation: conv weights N(0, 0.02), BatchNorm scale N(1, 0.02) and shift 0."""
    with torch.no_grad():
        for m in net.modules():
            w = getattr(m, "weight", None)
            if not isinstance(w, torch.Tensor):
                continue
            if w.dim() == 4:
                w.normal_(0.0, 0.02)
            elif w.dim() == 1:      # BatchNorm
                w.normal_(1.0, 0.02)
                m.bias.zero_()


class DCGANTask(_JudgedByLeNet):
    """Radford et al.: weights N(0, 0.02), Adam(2e-4, betas 0.5/0.999), batch 128, D on real then fake
    batches, then G; the lecture's minimax G loss log(1 - D(G(z))) or the non-saturating -log D(G(z)).
    Judged by the Frechet distance in LeNet's features to the test digits, beside the VAE's samples.
    Samples are drawn as the reference code draws them, with G's BatchNorm on the batch's statistics
    (pytorch/examples never switches G to eval mode); the figure with the running averages is reported
    beside it (gan_samples_running_stats_*)."""
    name = "dcgan"
    networks = ("dcgan_generator", "dcgan_discriminator")
    metric_name = "frechet_distance_lenet"
    higher_is_better = False
    target_text = "Frechet distance (LeNet features, to test digits) below the VAE samples' (the lecture's VAE vs GAN point)"
    batch_size, steps = 128, 2000
    supports_ddp = False   # D runs twice (real, fake) before each backward
    lr, betas = 2e-4, (0.5, 0.999)
    recipe_options = {"gan_loss": Option("nonsaturating", "G's loss", ("nonsaturating", "minimax"))}

    def __init__(self, settings):
        super().__init__(settings)
        self.loss_kind = self.option("gan_loss")
        G = self.build("dcgan_generator", key="G")
        D = self.build("dcgan_discriminator", key="D")
        dcgan_init(G)
        dcgan_init(D)
        c, h, w = D.input_shape
        self.splits = data.digits(size=h, channels=c, seed=settings.seed)
        self.train_set = self.splits.train
        self.optimizers["G"] = optim.adam(G.parameters(), lr=self.lr, betas=self.betas)
        self.optimizers["D"] = optim.adam(D.parameters(), lr=self.lr, betas=self.betas)
        self.details["gan_loss"] = self.loss_kind
        self._target_ready = False

    def z(self, n, generator=None):
        shape = self.nets["G"].input_shape
        return torch.randn(n, *shape, generator=generator).to(self.s.device)

    def d(self, x):
        return self.fwd["D"](x).reshape(-1)

    def step(self, batch, step):
        x, _ = batch
        x = x * 2 - 1                       # tanh range
        n = x.shape[0]
        ones = torch.ones(n, device=x.device)
        zeros = torch.zeros(n, device=x.device)
        G, oD, oG = self.fwd["G"], self.optimizers["D"], self.optimizers["G"]
        fake = G(self.z(n))
        oD.zero_grad(set_to_none=True)
        d_loss = self.F.binary_cross_entropy(self.d(x), ones) + self.F.binary_cross_entropy(self.d(fake.detach()), zeros)
        d_loss.backward()
        oD.step()
        oG.zero_grad(set_to_none=True)
        p_fake = self.d(fake)
        if self.loss_kind == "minimax":      # minimise log(1 - D(G(z))) = -BCE(D(G(z)), 0)
            g_loss = -self.F.binary_cross_entropy(p_fake, zeros)
        else:                                 # minimise -log D(G(z)) = BCE(D(G(z)), 1)
            g_loss = self.F.binary_cross_entropy(p_fake, ones)
        g_loss.backward()
        oG.step()
        return {"loss": d_loss.item() + g_loss.item(), "d_loss": d_loss.item(), "g_loss": g_loss.item()}

    def sample(self, n, seed=0, batch_statistics=True) -> torch.Tensor:
        """n samples in [0, 1]; batch_statistics: G's BatchNorm normalises with the statistics of the
        sampled batch (as in training and in the reference code), else with its running averages.
        Either way G's state is left as it was."""
        g = torch.Generator().manual_seed(seed)
        G = self.nets["G"]
        z = self.z(n, g)
        if not batch_statistics:
            return ((G(z) + 1) / 2).clamp(0, 1).cpu()
        was, saved = G.training, {k: v.clone() for k, v in G.state_dict().items()}
        G.train(True)
        try:
            out = G(z)
        finally:
            G.load_state_dict(saved)   # BatchNorm in train mode moved the running averages
            G.train(was)
        return ((out + 1) / 2).clamp(0, 1).cpu()

    def set_target(self):
        if self._target_ready:
            return
        from ..reference import trained
        vae = trained("vae", self.s)
        self.target = self.judge(vae.sample(self.samples_for_metric, seed=1), "vae_samples")
        self._target_ready = True

    def evaluate(self):
        self.set_target()
        self.judge(self.sample(self.samples_for_metric, seed=1, batch_statistics=False), "gan_samples_running_stats")
        return self.judge(self.sample(self.samples_for_metric, seed=1), "gan_samples")

    def plots(self, out_dir):
        from ..plots import image_grid
        return [image_grid(self.sample(64, seed=2), out_dir, "samples.png",
                           f"DCGAN samples ({self.loss_kind} loss)", columns=16)]

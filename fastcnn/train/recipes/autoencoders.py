"""Autoencoders: the convolutional autoencoder (BCE, against PCA with the same code size) and LLNet
(stacked sparse denoising autoencoder: layer-wise pretraining with tied weights, then fine-tuning)."""
from __future__ import annotations

import math

import numpy as np
import torch
from ... import data
from .. import optim
from ..task import Option, Task
from .classify import as_input, digits_for


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * math.log10(1.0 / mse)


class ConvAutoencoderTask(Task):
    """Denoising reconstruction of digits (input: the digit plus Gaussian noise, target: the clean digit),
    BCE loss, Adam. The baseline is PCA with the autoencoder's code size, fitted on the clean training
    digits and applied to the same noisy test digits (at the networks' input size the digits span at
    most 64 dimensions, so PCA reconstructs clean digits exactly and only denoising can tell them apart)."""
    name = "conv_autoencoder"
    metric_name = "test_psnr_db"
    target_text = "PSNR above PCA with the same code size, on noisy test digits (NETWORKS.md #7)"
    batch_size, steps = 64, 1500
    noise_std = 0.25
    lr = 2e-3

    def __init__(self, settings):
        super().__init__(settings)
        net = self.build("conv_autoencoder")
        self.splits = digits_for(net.input_shape, settings.seed)
        self.train_set = self.splits.train
        self.optimizers["model"] = optim.adam(net.parameters(), lr=self.lr)
        self.code_size = self.find_code_size(net)
        g = torch.Generator().manual_seed(settings.seed + 17)
        self.clean_test = self.splits.test[:][0]
        self.noisy_test = (self.clean_test + self.noise_std * torch.randn(self.clean_test.shape, generator=g)).clamp(0, 1)
        self.target = self.pca_psnr()
        self.details.update(code_size=self.code_size, pca_psnr_db=self.target, noise_std=self.noise_std)

    @staticmethod
    def find_code_size(net) -> int:
        """The bottleneck's size: net.code_size, or the output of net.encoder, else NETWORKS.md's 4x4x8."""
        if hasattr(net, "code_size"):
            return int(net.code_size)
        if hasattr(net, "encoder"):
            with torch.no_grad():
                was = net.training
                net.eval()
                x = torch.zeros(1, *net.input_shape, device=next(net.parameters()).device)
                n = net.encoder(x)[0].numel()
                net.train(was)
            return int(n)
        return 4 * 4 * 8

    def pca_psnr(self) -> float:
        from sklearn.decomposition import PCA

        x = self.splits.train[:][0]
        flat = x.reshape(len(x), -1).numpy()
        k = min(self.code_size, *flat.shape)
        pca = PCA(n_components=k, random_state=0).fit(flat)
        noisy = self.noisy_test.reshape(len(self.noisy_test), -1).numpy()
        rec = np.clip(pca.inverse_transform(pca.transform(noisy)), 0, 1)
        return psnr(rec, self.clean_test.reshape(len(rec), -1).numpy())

    def corrupt(self, x):
        return (x + self.noise_std * torch.randn_like(x)).clamp(0, 1)

    def step(self, batch, step):
        x, _ = batch
        opt = self.optimizers["model"]
        opt.zero_grad(set_to_none=True)
        rec = self.fwd["model"](self.corrupt(x))
        loss = self.F.binary_cross_entropy(rec, x)
        loss.backward()
        opt.step()
        return {"loss": loss.item()}

    def evaluate(self):
        rec = self.nets["model"](self.noisy_test.to(self.s.device)).cpu()
        return psnr(rec.numpy(), self.clean_test.numpy())

    def plots(self, out_dir):
        from ..plots import image_grid
        n = 12
        rec = self.nets["model"](self.noisy_test[:n].to(self.s.device)).cpu()
        grid = torch.cat([self.clean_test[:n], self.noisy_test[:n], rec]).reshape(3 * n, *self.clean_test.shape[1:])
        return [image_grid(grid[:, :1], out_dir, "reconstructions.png",
                           "rows: clean test digits, noisy input, reconstruction", columns=n)]


class LLNetTask(Task):
    """LLNet (Lore et al. 2017) on 17x17 patches of the shipped images (option images), tested on the held-out
    'camera' image darkened and noised. Phase 1 (5% of the steps per layer): each encoder layer
    is pretrained as a denoising autoencoder with tied weights (decoder = W^T plus its own bias),
    a KL(rho=0.2) sparsity penalty and weight decay; the decoder layers start from the transposes.
    Phase 2: the whole network is fine-tuned on MSE."""
    name = "llnet"
    metric_name = "test_psnr_db"
    target_text = ("PSNR (and SSIM) above both histogram equalisation and CLAHE on the held-out darkened "
                   "noisy image (NETWORKS.md #8)")
    batch_size, steps = 64, 8000
    supports_ddp = False    # the pretraining phases call the layers' weights directly
    rho, beta, weight_decay, lr = 0.2, 0.1, 1e-5, 1e-3
    pretrain_share = 0.05   # 3000 steps with 15% per layer ended at 15.7 dB (fine-tuning still climbing)
    test_image, test_size, test_gamma, test_variance = "camera", 128, 3.0, 0.005
    also_held_out = ("retina", "hubble_deep_field")   # the other shipped images outside the training set
    recipe_options = {
        "noise": Option("gaussian", "the training pairs' noise", ("gaussian", "poisson")),
        "patches": Option(20_000, "17x17 training patches"),
        "scales": Option((1,), "the training images shrunk by each factor, the patches split evenly over them"),
        "stride": Option(3, "stride of the overlapping patches that rebuild the held-out image (averaged)"),
        "pretrain_share": Option(pretrain_share, "share of the steps that pretrains each layer"),
        "lr_decay": Option("none", "fine-tuning learning rate: constant, or cosine to 0", ("none", "cosine")),
        "gamma": Option((2.0, 5.0), "the training pairs' gamma range (a diagnostic knob: the paper's is 2,5)"),
        "images": Option("all", "training images: 'skimage' (the 11 of data.TRAIN_IMAGES) or 'all' (those and "
                         "every other shipped photograph / micrograph outside the held-out set, data.EXTRA_IMAGES)",
                         ("skimage", "all")),
    }

    def __init__(self, settings):
        super().__init__(settings)
        net = self.build("llnet")
        self.depth = net.depth
        self.patch = int(round(net.input_shape[0] ** 0.5))
        self.stride, self.pretrain_share = self.option("stride"), self.option("pretrain_share")
        self.train_set = data.LowLightPairs(self.clean_patches(settings.seed), seed=settings.seed,
                                            noise=self.option("noise"), gamma=self.option("gamma"))
        self.details.update(gamma=list(self.option("gamma")), patches=self.option("patches"),
                            scales=list(self.option("scales")), stride=self.stride, lr_decay=self.option("lr_decay"),
                            pretrain_share=self.pretrain_share, images=self.option("images"))
        per_layer = max(1, int(self.steps * self.pretrain_share))
        self.boundaries = [per_layer * (k + 1) for k in range(self.depth)]
        for k in range(self.depth):
            # layer k's tied autoencoder: its encoder and, as visible bias, the mirrored decoder's bias
            params = list(net.encoders[k].parameters()) + [net.decoders[self.depth - 1 - k].bias]
            self.optimizers[f"pretrain{k}"] = optim.adam(params, lr=self.lr)
        self.optimizers["finetune"] = optim.adam(net.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        if self.option("lr_decay") == "cosine":   # over the fine-tuning steps only
            self.schedulers["finetune"] = torch.optim.lr_scheduler.CosineAnnealingLR(
                self.optimizers["finetune"], T_max=max(1, self.steps - self.boundaries[-1]))
        self.make_test_image()

    def clean_patches(self, seed: int):
        """option('patches') patches, split evenly over the training images shrunk by each factor of
        option('scales') (the held-out image is itself a 4x shrunk photograph)."""
        from torch.utils.data import ConcatDataset

        scales, count = self.option("scales"), self.option("patches")
        names = data.TRAIN_IMAGES + (data.EXTRA_IMAGES if self.option("images") == "all" else ())
        sets = []
        for k, factor in enumerate(scales):
            images = [data.shrink(im, factor) for im in data.sample_images(names)]
            images = [im for im in images if min(im.shape) >= self.patch]
            sets.append(data.ImagePatches(images, self.patch, count=count // len(scales), seed=seed + 7919 * k))
        return sets[0] if len(sets) == 1 else ConcatDataset(sets)

    def phase(self, step: int) -> int:
        """0..depth-1: pretraining that encoder layer; depth: fine-tuning."""
        return next((k for k, b in enumerate(self.boundaries) if step < b), self.depth)

    def kl_sparsity(self, h):
        rho_hat = h.mean(0).clamp(1e-6, 1 - 1e-6)
        rho = self.rho
        return (rho * torch.log(rho / rho_hat) + (1 - rho) * torch.log((1 - rho) / (1 - rho_hat))).sum()

    def step(self, batch, step):
        noisy, clean = (b.reshape(b.shape[0], -1) for b in batch)
        net = self.nets["model"]
        k = self.phase(step)
        if k < self.depth:
            opt = self.optimizers[f"pretrain{k}"]
            opt.zero_grad(set_to_none=True)
            with torch.no_grad():   # layer k denoises the codes of the layers below
                inp, target = net.encode(noisy, layers=k), net.encode(clean, layers=k)
            enc = net.encoders[k]
            h = net.act(enc(inp))
            rec = net.tied_decode(k, h)
            loss = (self.F.mse_loss(rec, target) + self.beta * self.kl_sparsity(h) / h.shape[1]
                    + 0.5 * self.weight_decay * (enc.weight ** 2).sum())
            loss.backward()
            opt.step()
            if step + 1 == self.boundaries[-1]:
                net.untie_decoders()
        else:
            opt = self.optimizers["finetune"]
            opt.zero_grad(set_to_none=True)
            out = self.fwd["model"](noisy)
            loss = self.F.mse_loss(out, clean)
            loss.backward()
            opt.step()
            if "finetune" in self.schedulers:
                self.schedulers["finetune"].step()
        return {"loss": loss.item()}

    # -- the held-out test images ---------------------------------------------------------------
    def held_out(self, name: str):
        """(clean, darkened noisy) `name`: shrunk to test_size rows, darkened with test_gamma and test_variance."""
        from skimage.transform import resize

        im = data.sample_images([name])[0]
        size = (self.test_size, round(self.test_size * im.shape[1] / im.shape[0]))
        clean = resize(im, size, order=1, anti_aliasing=True).astype(np.float32)
        g = torch.Generator().manual_seed(12345)
        return clean, data.darken(torch.from_numpy(clean), self.test_gamma, "gaussian", self.test_variance, g).numpy()

    @staticmethod
    def baselines_of(dark: np.ndarray) -> dict:
        from skimage import exposure
        return {"histogram_equalisation": exposure.equalize_hist(dark).astype(np.float32),
                "clahe": exposure.equalize_adapthist(dark).astype(np.float32)}

    def make_test_image(self):
        self.test_clean, self.test_dark = self.held_out(self.test_image)
        self.baselines = self.baselines_of(self.test_dark)
        scores = {k: self.scores(v) for k, v in self.baselines.items()}
        self.target = max(s[0] for s in scores.values())
        for k, (p, s) in scores.items():
            self.details[f"{k}_psnr_db"], self.details[f"{k}_ssim"] = p, s
        self.details["dark_input_psnr_db"], self.details["dark_input_ssim"] = self.scores(self.test_dark)
        # more held-out images, reported beside the target image (never in the training set)
        self.also = {n: self.held_out(n) for n in self.also_held_out}
        for n, (clean, dark) in self.also.items():
            for k, v in self.baselines_of(dark).items():
                self.details[f"{n}_{k}_psnr_db"], self.details[f"{n}_{k}_ssim"] = self.scores(v, clean)

    def scores(self, image, clean=None):
        from skimage.metrics import structural_similarity
        clean = self.test_clean if clean is None else clean
        return psnr(image, clean), float(structural_similarity(image, clean, data_range=1.0))

    def enhance(self, image: np.ndarray, stride: int = None) -> np.ndarray:
        """Overlapping 17x17 patches through the network, averaged back into the image."""
        p, (h, w), stride = self.patch, image.shape, stride or self.stride
        rows = list(range(0, h - p + 1, stride)) + ([h - p] if (h - p) % stride else [])
        cols = list(range(0, w - p + 1, stride)) + ([w - p] if (w - p) % stride else [])
        t = torch.from_numpy(image)
        patches = torch.stack([t[r:r + p, c:c + p].reshape(-1) for r in rows for c in cols])
        net = self.nets["model"]
        out = torch.cat([net(as_input(patches[i:i + 1024].to(self.s.device), net.input_shape)).reshape(-1, p * p).cpu()
                         for i in range(0, len(patches), 1024)]).numpy()
        acc, cnt = np.zeros_like(image, dtype=np.float64), np.zeros_like(image, dtype=np.float64)
        i = 0
        for r in rows:
            for c in cols:
                acc[r:r + p, c:c + p] += out[i].reshape(p, p)
                cnt[r:r + p, c:c + p] += 1
                i += 1
        return (acc / cnt).astype(np.float32)

    def evaluate(self):
        p, s = self.scores(self.enhance(self.test_dark))
        self.details["llnet_psnr_db"], self.details["llnet_ssim"] = p, s
        self.details["ssim_above_baselines"] = s > max(self.details["histogram_equalisation_ssim"],
                                                       self.details["clahe_ssim"])
        for n, (clean, dark) in self.also.items():
            self.details[f"{n}_llnet_psnr_db"], self.details[f"{n}_llnet_ssim"] = self.scores(self.enhance(dark), clean)
        return p

    def plots(self, out_dir):
        from ..plots import side_by_side
        return [side_by_side([self.test_dark, self.baselines["histogram_equalisation"], self.baselines["clahe"],
                              self.enhance(self.test_dark), self.test_clean],
                             ["darkened + noise (input)", "histogram equalisation", "CLAHE", "LLNet", "ground truth"],
                             out_dir, "enhancement.png", "held-out image: LLNet before/after beside histogram equalisation")]

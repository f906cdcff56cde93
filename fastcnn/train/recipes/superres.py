"""x4 super-resolution (Ledig et al. 2017): SRResNet on MSE, then SRGAN (the same generator, started
from the trained SRResNet, with a content loss on features plus an adversarial loss), both measured by
PSNR / SSIM on the Y channel of the held-out image (chelsea) against bicubic upsampling.

The paper's content loss uses an ImageNet-trained VGG19; no pretrained network exists offline, so the
features here come from a network this project trains itself: `alexnet_patches`, AlexNet-small taught
to tell which shipped colour image a 67x67 crop comes from (its conv1 + ReLU responses, 11x11 filters
at stride 4). That is a much weaker feature space than VGG's, so the "perceptual" part of our SRGAN is
only an approximation of the paper's.

Residual over bicubic (not in the paper, whose SRResNet outputs the image itself): the generator's tanh
output is added to the bicubic upsampling of its input (both in [-1, 1] units), as VDSR (Kim et al. 2016)
learns the residual, and its last convolution starts at zero, so a run starts at bicubic's PSNR. The paper
trains 10^6 steps; here a few thousand are all the CPU allows, and the paper's form, which must first
learn to reproduce the image's colours through 4 + 8 convolutions, was 4 dB below bicubic with a colour
cast after 600 steps (docs/results.md).
"""
from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import TensorDataset

from ... import data
from ...data import superres as sr_data
from ...eval.superres import psnr_y, ssim_y
from .. import optim
from ..task import Task


def lr_to_input(lr) -> torch.Tensor:
    """(H, W, 3) numpy in [0, 1] -> [1, 3, H, W] (SRGAN feeds LR images in [0, 1])."""
    return image_to_tensor(lr)


def image_to_tensor(image: np.ndarray) -> torch.Tensor:
    """(H, W, 3) numpy -> [1, 3, H, W] float."""
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))[None].float()


def output_to_image(out: torch.Tensor) -> np.ndarray:
    """Generator output [1, 3, H, W] in [-1, 1] (tanh) -> (H, W, 3) numpy in [0, 1]."""
    return ((out[0].detach().cpu().float() + 1) / 2).clamp(0, 1).permute(1, 2, 0).numpy()


class _SuperResolution(Task):
    """Shared by SRResNet and SRGAN: training crops at the generator's size, the held-out evaluation."""
    metric_name = "heldout_psnr_y_db"
    crops = 4000             # distinct training crops (each generated once, then cached)
    hr_crop = None           # HR crop side; None: the generator's output size (small: 48)
    residual_over_bicubic = True   # see the module doc

    def make_data(self, generator):
        hr = self.hr_crop or generator.output_shape[-1]
        self.train_set = data.SuperResCrops(length=self.crops, hr_size=hr, scale=sr_data.SCALE, seed=self.s.seed,
                                            bicubic=self.residual_over_bicubic)
        self.details["residual_over_bicubic"] = self.residual_over_bicubic
        self.heldout_lr, self.heldout_hr = sr_data.heldout_pair()
        bicubic = sr_data.upscale_bicubic(self.heldout_lr)
        self.bicubic = bicubic
        self.target = psnr_y(bicubic, self.heldout_hr)
        self.details.update(bicubic_psnr_y_db=self.target, bicubic_ssim_y=ssim_y(bicubic, self.heldout_hr),
                            heldout=f"{sr_data.HELDOUT_IMAGE} HR {self.heldout_hr.shape[:2]}, LR {self.heldout_lr.shape[:2]}")

    def generate(self, G, lr: torch.Tensor, bicubic: torch.Tensor = None) -> torch.Tensor:
        """The super-resolved batch in [-1, 1] units: G's output, plus the bicubic upsampling ([0, 1]) of
        ``lr`` when the recipe learns the residual over it."""
        out = G(lr)
        return out + (bicubic * 2 - 1) if self.residual_over_bicubic else out

    def unpack(self, batch):
        """(lr, hr, bicubic or None) of a training batch."""
        return batch[0], batch[1], (batch[2] if self.residual_over_bicubic else None)

    def super_resolve(self, lr: np.ndarray) -> np.ndarray:
        """The generator on a whole LR image (it is fully convolutional), as (H, W, 3) in [0, 1]."""
        G = self.nets[self.generator_key]
        bicubic = image_to_tensor(sr_data.upscale_bicubic(lr)).to(self.s.device)
        return output_to_image(self.generate(G, lr_to_input(lr).to(self.s.device), bicubic))

    def evaluate(self):
        out = self.super_resolve(self.heldout_lr)
        self.details["psnr_y_db"] = psnr_y(out, self.heldout_hr)
        self.details["ssim_y"] = ssim_y(out, self.heldout_hr)
        return self.details["psnr_y_db"]

    def plots(self, out_dir):
        from ..plots import side_by_side
        out = self.super_resolve(self.heldout_lr)
        return [side_by_side([self.bicubic, out, self.heldout_hr], ["bicubic", self.name, "original"], out_dir,
                             "superres.png", f"x4 super-resolution of the held-out image ({sr_data.HELDOUT_IMAGE})")]


class SRResNetTask(_SuperResolution):
    """The paper's SRResNet: pixel MSE between the output (tanh, [-1, 1]) and the HR crop mapped to
    [-1, 1], LR input in [0, 1], Adam (beta1 0.9), the paper's 24x24 -> 96x96 crops. The paper's batch is
    16; 4 here keeps a step's pixels those of 16 crops of the small network's own 48x48 (a 200-step test:
    25.8 dB on the held-out image against 24.2 for 16 x 48x48, less colour bias: at 12x12 every LR pixel
    lies within the 9x9 head's zero padding and the trunk's receptive field, unlike a whole image's). The
    paper trains 10^6 steps at lr 1e-4; a CPU run of a few thousand steps does not get far at that rate,
    so this recipe uses 1e-3 with a cosine decay over the run (docs/results.md has the measured figures)."""
    name = "srresnet"
    generator_key = "model"
    target_text = "PSNR (Y, border 4) on the held-out image above bicubic upsampling (NETWORKS.md #12)"
    batch_size, steps = 4, 700
    hr_crop, crops = 96, 2000    # 2000 cached 96x96 crops: 235 MB
    lr = 1e-3

    def __init__(self, settings):
        super().__init__(settings)
        net = self.build("srresnet")
        if self.residual_over_bicubic:   # start as bicubic exactly (the residual is 0)
            with torch.no_grad():
                net.tail[0].weight.zero_()
                net.tail[0].bias.zero_()
        self.make_data(net)
        self.optimizers["model"] = optim.adam(net.parameters(), lr=self.lr, betas=(0.9, 0.999))
        self.schedulers["model"] = torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizers["model"],
                                                                              T_max=max(1, self.steps))
        self.details["lr"] = self.lr

    def step(self, batch, step):
        lr, hr, bicubic = self.unpack(batch)
        opt = self.optimizers["model"]
        opt.zero_grad(set_to_none=True)
        loss = self.F.mse_loss(self.generate(self.fwd["model"], lr, bicubic), hr * 2 - 1)
        loss.backward()
        opt.step()
        self.schedulers["model"].step()
        return {"loss": loss.item()}


PATCH_IMAGES = ("astronaut", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry", "retina",
                "motorcycle_left")
"""The classes of `alexnet_patches`: shipped colour images (chelsea, the held-out SR image, is not one)."""


def _patch_image(name: str) -> np.ndarray:
    from skimage import data as skdata
    image = skdata.stereo_motorcycle()[0] if name == "motorcycle_left" else getattr(skdata, name)()
    return image[..., :3].astype(np.float32) / 255.0


def colour_patches(side: int, count: int, seed: int, part: str) -> TensorDataset:
    """`count` random side x side crops of PATCH_IMAGES labelled by image, from the top 80% of each image's
    rows (part 'train') or the bottom 20% (part 'test'): the two never overlap."""
    rng = np.random.default_rng((seed, 0 if part == "train" else 1))
    images = [_patch_image(n) for n in PATCH_IMAGES]
    x = np.empty((count, 3, side, side), np.float32)
    y = rng.integers(len(images), size=count)
    for i, c in enumerate(y):
        im = images[c]
        cut = int(im.shape[0] * 0.8)
        lo, hi = (0, cut - side) if part == "train" else (cut, im.shape[0] - side)
        r, col = rng.integers(lo, hi + 1), rng.integers(0, im.shape[1] - side + 1)
        crop = im[r:r + side, col:col + side]
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        x[i] = crop.transpose(2, 0, 1)
    return TensorDataset(torch.from_numpy(x), torch.from_numpy(y))


class AlexNetPatchesTask(Task):
    """AlexNet-small (3x67x67, 7 classes) trained to tell which shipped colour image a crop comes from:
    the feature network of SRGAN's content loss (no pretrained VGG offline) and a first layer learned on
    natural colour images for the filters comparison. Adam 1e-3 without weight decay (what trained the
    digits AlexNet here)."""
    name = "alexnet_patches"
    metric_name = "test_accuracy"
    target, target_text = None, "reported (a feature network for SRGAN's content loss, not a lecture figure)"
    batch_size, steps = 32, 600
    lr = 1e-3

    def __init__(self, settings):
        super().__init__(settings)
        net = self.build("alexnet", num_classes=len(PATCH_IMAGES), in_channels=3)
        side = net.input_shape[-1]
        self.train_set = colour_patches(side, 6000, settings.seed, "train")
        self.test_set = colour_patches(side, 800, settings.seed, "test")
        self.optimizers["model"] = optim.adam(net.parameters(), lr=self.lr)
        self.details["classes"] = list(PATCH_IMAGES)

    def step(self, batch, step):
        x, y = batch
        opt = self.optimizers["model"]
        opt.zero_grad(set_to_none=True)
        loss = self.F.cross_entropy(self.fwd["model"](x), y)
        loss.backward()
        opt.step()
        return {"loss": loss.item()}

    def evaluate(self):
        from .classify import accuracy
        x, y = self.test_set[:]
        net = self.nets["model"]
        return accuracy(net, x.to(self.s.device), y.to(self.s.device), net.input_shape)

    def plots(self, out_dir):
        from ..plots import first_layer_filters
        return first_layer_filters(self.nets["model"], out_dir)

    def content_features(self) -> torch.nn.Module:
        """conv1 + ReLU of the trained network, frozen (the content loss's feature map)."""
        features = self.nets["model"].features
        head = torch.nn.Sequential(features[0], features[1]).eval()
        for p in head.parameters():
            p.requires_grad_(False)
        return head


class SRGANTask(_SuperResolution):
    """SRGAN: the generator (the zoo's srresnet: the paper's SRGAN generator is SRResNet, same modules and
    state_dict keys) starts from the finished `srresnet` run; the discriminator (srgan_discriminator, sigmoid
    output) learns real HR crops against generated ones with BCE; the generator minimises
    content + 1e-3 * BCE(D(G(lr)), 1) (the paper's weights), the content loss being the MSE between
    features of the output and of the HR crop in `alexnet_patches`' conv1 (see the module doc), scaled
    so that it starts at the size of the pixel MSE (the paper scales VGG losses by 1/12.75 for the same
    reason). Adam 1e-4 for both, as the paper's first phase."""
    name = "srgan"
    networks = ("srresnet", "srgan_discriminator")
    generator_key = "G"
    target_text = ("reported against bicubic (the paper's SRGAN trades PSNR for perceptual quality: it scores "
                   "below SRResNet and near bicubic)")
    batch_size, steps = 16, 200
    supports_ddp = False    # D runs twice (real, fake) before each backward
    lr, adversarial_weight = 1e-4, 1e-3

    def __init__(self, settings):
        super().__init__(settings)
        from ..reference import trained

        G = self.build("srresnet", key="G")
        D = self.build("srgan_discriminator", key="D")
        srresnet = trained("srresnet", settings, any_steps=True)
        G.load_state_dict(srresnet.nets["model"].state_dict())
        with torch.no_grad():
            self.details["srresnet_start_psnr_y_db"] = srresnet.evaluate()
        self.details["srresnet_steps"] = srresnet.steps_done
        self.content_net = trained("alexnet_patches", settings, any_steps=True).content_features().to(settings.device)
        self.make_data(G)
        self.target = None          # reported, not a target (see target_text)
        self.optimizers["G"] = optim.adam(G.parameters(), lr=self.lr, betas=(0.9, 0.999))
        self.optimizers["D"] = optim.adam(D.parameters(), lr=self.lr, betas=(0.9, 0.999))
        self.content_scale = None
        self.details["content_features"] = "alexnet_patches conv1 + ReLU (trained here; no pretrained VGG offline)"
        self.details["adversarial_weight"] = self.adversarial_weight

    def features(self, x_tanh):
        return self.content_net((x_tanh + 1) / 2)

    def step(self, batch, step):
        lr, hr, bicubic = self.unpack(batch)
        hr = hr * 2 - 1
        n = hr.shape[0]
        ones = torch.ones(n, device=hr.device)
        zeros = torch.zeros(n, device=hr.device)
        G, D, oG, oD = self.fwd["G"], self.fwd["D"], self.optimizers["G"], self.optimizers["D"]
        fake = self.generate(G, lr, bicubic)
        oD.zero_grad(set_to_none=True)
        d_loss = (self.F.binary_cross_entropy(D(hr).reshape(-1), ones)
                  + self.F.binary_cross_entropy(D(fake.detach()).reshape(-1), zeros))
        d_loss.backward()
        oD.step()
        oG.zero_grad(set_to_none=True)
        target = self.features(hr)
        content = self.F.mse_loss(self.features(fake), target)
        if self.content_scale is None:   # fixed from the first batch: features ~ the pixel range
            self.content_scale = float(target.pow(2).mean().clamp_min(1e-8))
        content = content / self.content_scale
        adversarial = self.F.binary_cross_entropy(D(fake).reshape(-1), ones)
        g_loss = content + self.adversarial_weight * adversarial
        g_loss.backward()
        oG.step()
        return {"loss": g_loss.item(), "d_loss": d_loss.item(), "content": content.item(),
                "adversarial": adversarial.item()}

    def extra_state(self):
        return {"content_scale": self.content_scale}

    def load_extra_state(self, state):
        self.content_scale = state.get("content_scale")

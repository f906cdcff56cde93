"""LLNet shortfall analysis (docs/training.md): PSNR / SSIM on the held-out camera image of the pixel-wise
estimator E[x | dark pixel], tabulated from training-image pixels darkened like LLNet's pairs (gamma ~ U(2,5),
noise sigma^2 ~ U(0, 0.01)) and with the test gamma 3 known; histogram equalisation beside it.
Run: PYTHONPATH=$PWD python scripts/llnet_pixelwise_bound.py  (a few seconds)"""
import numpy as np, torch
from fastcnn import data
from fastcnn.train.recipes.autoencoders import LLNetTask, psnr
from skimage.metrics import structural_similarity as ssim
rng = np.random.default_rng(0)
pix = np.concatenate([im[::3, ::3].ravel() for im in data.sample_images()])
x = rng.choice(pix, 2_000_000)
class T(LLNetTask):
    def __init__(self): self.details = {}; self.make_test_image()
t = T()
for label, gam in (("gamma U(2,5)", rng.uniform(2, 5, x.size)), ("gamma 3", np.full(x.size, 3.0))):
    var = rng.uniform(0, 0.01, x.size)
    d = np.clip(x ** gam + rng.standard_normal(x.size) * np.sqrt(var), 0, 1)
    bins = np.linspace(0, 1, 257); idx = np.clip(np.digitize(d, bins) - 1, 0, 255)
    table = np.bincount(idx, x, 256) / np.maximum(np.bincount(idx, None, 256), 1)
    ti = np.clip(np.digitize(t.test_dark, bins) - 1, 0, 255)
    out = table[ti].astype(np.float32)
    print(label, "pixelwise E[x|d]: PSNR %.2f SSIM %.3f mean %.3f (clean mean %.3f)" % (
        psnr(out, t.test_clean), ssim(out, t.test_clean, data_range=1), out.mean(), t.test_clean.mean()))
print("HE", t.details["histogram_equalisation_psnr_db"], t.details["histogram_equalisation_ssim"])

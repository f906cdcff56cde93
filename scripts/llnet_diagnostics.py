"""Where LLNet loses PSNR to histogram equalisation on the held-out 'camera' (docs/training.md, llnet), for
finished runs: PYTHONPATH=$PWD python scripts/llnet_diagnostics.py runs/llnet [runs/other ...]  (seconds each).

Per run: PSNR / SSIM with the reconstruction stride 1 and 3; with an oracle monotone remap of the output
(isotonic regression onto the truth: how much is the tone curve, not the structure; a diagnostic, never a
method); over the test gamma 2..5 beside HE and CLAHE; and the "dark-pixel cap": the PSNR if every pixel
whose clean value is >= 0.2 were perfect and the dark ones (27% of camera: x^3 <= 0.008 under noise
sigma 0.071) kept the output; and whether the network is the best patch-wise guess for its own training
pairs (bayes_check). The same cap for HE and for the pixel-wise table E[x | dark pixel] of
scripts/llnet_pixelwise_bound.py comes first."""
import json
import sys

import numpy as np
import torch
from skimage import exposure
from skimage.metrics import structural_similarity
from sklearn.isotonic import IsotonicRegression

from fastcnn import data
from fastcnn.train.recipes.autoencoders import LLNetTask, psnr
from fastcnn.train.task import Settings


def scores(out, clean):
    return "%.2f / %.3f" % (psnr(out, clean), structural_similarity(out.astype(np.float32), clean, data_range=1.0))


def pixelwise_table(gamma_range, n=2_000_000, seed=0):
    """E[x | darkened pixel] over training-image pixels darkened like LLNet's pairs, in 256 bins."""
    rng = np.random.default_rng(seed)
    x = rng.choice(np.concatenate([im[::3, ::3].ravel() for im in data.sample_images()]), n)
    d = np.clip(x ** rng.uniform(*gamma_range, n) + rng.standard_normal(n) * np.sqrt(rng.uniform(0, 0.01, n)), 0, 1)
    idx = np.clip(np.digitize(d, np.linspace(0, 1, 257)) - 1, 0, 255)
    table = np.bincount(idx, x, 256) / np.maximum(np.bincount(idx, None, 256), 1)
    return lambda dark: table[np.clip(np.digitize(dark, np.linspace(0, 1, 257)) - 1, 0, 255)].astype(np.float32)


def bayes_check(task, n=20_000, seed=1):
    """Is the network the best patch-wise guess for its own training distribution? Per bin of the
    darkened patch's mean: the clean patches' mean (the MSE-optimal answer, E[clean | bin]) beside the
    network's; then the same for camera's dark patches (clean mean < 0.15)."""
    from fastcnn.train.recipes.autoencoders import as_input

    net = task.nets["model"]
    pairs = data.LowLightPairs(data.ImagePatches(data.sample_images(), task.patch, count=n, seed=seed), seed=seed,
                               gamma=tuple(task.option("gamma")))
    dark, clean = (torch.stack(t).reshape(n, -1) for t in zip(*[pairs[i] for i in range(n)]))
    with torch.no_grad():
        out = net(as_input(dark, net.input_shape)).reshape(n, -1)
    mean = dark.mean(1)
    for lo, hi in ((0, 0.02), (0.02, 0.03), (0.03, 0.05), (0.05, 0.08)):
        k = (mean >= lo) & (mean < hi)
        print(f"  training pairs, darkened mean [{lo}, {hi}): {int(k.sum())} patches, E[clean] {clean[k].mean():.3f}, "
              f"LLNet {out[k].mean():.3f}")
    p, (h, w) = task.patch, task.test_clean.shape
    cut = [(r, c) for r in range(0, h - p + 1, 3) for c in range(0, w - p + 1, 3)]
    cd = torch.tensor(np.array([task.test_dark[r:r + p, c:c + p].ravel() for r, c in cut]))
    cc = torch.tensor(np.array([task.test_clean[r:r + p, c:c + p].ravel() for r, c in cut]))
    k = cc.mean(1) < 0.15
    with torch.no_grad():
        co = net(as_input(cd[k], net.input_shape)).reshape(int(k.sum()), -1)
    print(f"  camera's dark patches: {int(k.sum())}, darkened mean {cd[k].mean():.3f}, clean {cc[k].mean():.3f}, "
          f"LLNet {co.mean():.3f}")


def main(runs):
    torch.set_num_threads(1)
    probe = LLNetTask(Settings(options={"patches": 64}))
    clean, dark = probe.test_clean, probe.test_dark
    low = clean < 0.2

    def cap(out):
        return psnr(np.where(low, out, clean), clean)

    he = exposure.equalize_hist(dark).astype(np.float32)
    print(f"camera 128x128, gamma 3, sigma^2 0.005: {low.mean():.1%} of pixels below 0.2 (mean {clean[low].mean():.3f})")
    print(f"HE {scores(he, clean)}, dark-pixel cap {cap(he):.2f} dB, its mean there {he[low].mean():.3f}")
    for gam in ((2.0, 5.0), (3.0, 3.0)):
        out = pixelwise_table(gam)(dark)
        print(f"pixel-wise table, gamma {gam}: {scores(out, clean)}, dark-pixel cap {cap(out):.2f} dB, "
              f"mean there {out[low].mean():.3f}")
    for run in runs:
        m = json.load(open(f"{run}/metrics.json"))
        task = LLNetTask(Settings(size=m["size"], options={"patches": 64}))
        task.nets["model"].load_state_dict(torch.load(f"{run}/checkpoint.pt", weights_only=True)["nets"]["model"])
        task.train_mode(False)
        print(f"\n{run}: {m['size']}, {m['steps']} steps, training gamma {m['details'].get('gamma', [2.0, 5.0])}")
        with torch.no_grad():
            out = task.enhance(dark, 3)
            print(f"  stride 3 {scores(out, clean)}; stride 1 {scores(task.enhance(dark, 1), clean)}")
            iso = IsotonicRegression(out_of_bounds="clip").fit(out.ravel(), clean.ravel()).predict(out.ravel())
            print(f"  oracle monotone remap {scores(iso.reshape(out.shape).astype(np.float32), clean)}; "
                  f"dark-pixel cap {cap(out):.2f} dB, mean there {out[low].mean():.3f}")
            bayes_check(task)
            for gam in (2.0, 3.0, 4.0, 5.0):
                d = data.darken(torch.from_numpy(clean), gam, "gaussian", task.test_variance,
                                torch.Generator().manual_seed(12345)).numpy()
                print(f"  test gamma {gam}: LLNet {scores(task.enhance(d, 3), clean)}   "
                      f"HE {scores(exposure.equalize_hist(d).astype(np.float32), clean)}   "
                      f"CLAHE {scores(exposure.equalize_adapthist(d).astype(np.float32), clean)}")


if __name__ == "__main__":
    main(sys.argv[1:])

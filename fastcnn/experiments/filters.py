"""First-layer filters against Gaussian derivatives and the PCA of natural image patches (the lecture's
receptive-field slide): how much of a trained first layer's energy the first 6 Gaussian derivatives
(best sigma) explain, beside the same layer at its initialisation, a random bank and the principal
components of natural patches."""
from __future__ import annotations

import numpy as np

from . import Row, experiment

# trained network -> (module path of its first convolution, what it learned from)
FIRST_LAYERS = {
    "alexnet_patches": ("features.0", "AlexNet-small, which shipped colour image a 67x67 crop comes from"),
    "srresnet": ("head.0", "SRResNet-small, x4 super-resolution (MSE)"),
}


def first_layer(net, path: str) -> np.ndarray:
    return net.get_submodule(path).weight.detach().cpu().numpy().astype(np.float64)


def initial_first_layer(name: str, path: str, seed: int) -> np.ndarray:
    """The same layer as the run drew it before training (the recipe builds its network first, right
    after torch.manual_seed(seed))."""
    import torch

    from ..train.recipes import RECIPES
    from ..train.task import Settings

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        task = RECIPES[name](Settings(seed=seed))
    return first_layer(task.nets[next(iter(task.nets))], path)


@experiment("filters", "first-layer filters of trained networks against Gaussian derivatives and the PCA of "
                       "natural patches (the receptive-field slide)",
            networks=tuple(FIRST_LAYERS))
def filters(ctx):
    from ..eval import filters as fl
    from .superres import trained_task

    pca_count = 2000 if ctx.quick else 20000
    for name, (path, what) in FIRST_LAYERS.items():
        ctx.trained(name)
        task = trained_task(ctx, name)
        learned = first_layer(task.nets[next(iter(task.nets))], path)
        initial = initial_first_layer(name, path, ctx.seed)
        side = learned.shape[-1]
        random = np.random.default_rng(ctx.seed).standard_normal(learned.shape)
        pca, _ = fl.patch_pca(fl.natural_image_patches(side, pca_count, seed=ctx.seed), 6)
        scores = {k: fl.best_sigma_energy(v) for k, v in
                  (("learned", learned), ("initial", initial), ("random", random), ("pca", pca))}
        moved = float(np.linalg.norm(learned - initial) / np.linalg.norm(initial))
        shown = fl.plot_filter_comparison(learned, ctx.image_path(f"filters_{name}.png"), pca_count=pca_count,
                                          title=f"{name}: first layer {tuple(learned.shape)} ({what})")
        ctx.figures[name] = {"shape": list(learned.shape), "layer": path, "steps": task.steps_done,
                             "relative_change_from_init": moved,
                             **{f"{k}_best_sigma": s for k, (s, _) in scores.items()},
                             **{f"{k}_energy_6_gaussian_derivatives": e for k, (_, e) in scores.items()},
                             "learned_energy_in_6_pca_components": shown["energy_pca"]}
        e = {k: v[1] for k, v in scores.items()}
        ctx.rows.append(Row(
            network=f"{name} (first layer {side}x{side})", task="receptive fields",
            metric="energy in span of 6 Gaussian derivatives (best sigma)",
            baseline="PCA of natural patches / random bank / same layer at init",
            baseline_figure=f"PCA {e['pca']:.3f}; random {e['random']:.3f}; init {e['initial']:.3f}",
            figure=f"{e['learned']:.3f} (weights moved {moved:.0%} from init; "
                   f"{shown['energy_pca']:.3f} in the span of 6 PCA components)"))

"""Handcrafted against learned local features (the lecture's table): HardNet against raw pixels and SIFT
descriptors on the same held-out patches and the same SIFT keypoints; R2D2 against SIFT on the held-out
homography pairs and on the motorcycle stereo pair, with the time per image of each measured here, in one
process at one thread count."""
from __future__ import annotations

import torch

from . import Row, experiment
from ._speed import step_speedup

QUICK_STEREO_SCALE = 0.3


def load_network(name: str, folder: str):
    """The zoo network (small, fastcnn layers) with the weights of the finished run in ``folder``."""
    from ..models import get_model
    from ..train import checkpoint, loop

    path = loop.checkpoint_path(folder)
    payload = checkpoint.load(path, {"network": name})
    net = get_model(name, payload["run"].get("size", "small"))
    net.load_state_dict(payload["nets"]["model"])
    return net.eval()


def training_time(m: dict) -> str:
    """All the run's steps at its measured step rate (a resumed run's metrics time only its last part)."""
    seconds = m["steps"] / m["steps_per_s"] if m.get("steps_per_s") else m["seconds"]
    return f"{seconds:.0f} s ({m['steps']} steps x batch {m['batch_size']}, {m['threads']} threads)"


def mma(r: dict) -> str:
    return f"{r['mma@1']:.3f} / {r['mma@3']:.3f} / {r['mma@5']:.3f}"


def summary(results) -> dict:
    from ..eval.baselines import average_accuracies
    return average_accuracies(results)


@experiment("features", "local features: HardNet beats raw pixels and SIFT descriptors on patches; R2D2 against SIFT "
                        "in matching accuracy and time per image (handcrafted vs learned)",
            networks=("hardnet", "r2d2"))
def features(ctx):
    from ..data import features as fd
    from ..eval import baselines, local_features, match_plots, matching
    from ..train.recipes import features as recipes

    if ctx.threads:
        torch.set_num_threads(ctx.threads)
    threads = torch.get_num_threads()
    ctx.figures["threads"] = threads
    runs = {"hardnet": ctx.trained("hardnet", "--eval-every", "500"),
            "r2d2": ctx.trained("r2d2", "--eval-every", "400")}
    nets = {k: load_network(k, v) for k, v in runs.items()}
    metrics = {k: ctx.metrics(v) for k, v in runs.items()}
    # at the recipes' training batch (quick: a tiny one, one repetition)
    # the eager twin's training-step time over fastcnn's on one batch of each recipe (above 1: fastcnn faster)
    ratio = {} if ctx.quick else {name: step_speedup(name, ctx.seed) for name in ("hardnet", "r2d2")}
    ratio_text = {k: f"{ratio[k]:.2f}x (step time, eager twin, {threads} threads)" if k in ratio else "—"
                  for k in ("hardnet", "r2d2")}
    ctx.figures["step_speedup_vs_eager_twin"] = ratio

    # -- HardNet: patch verification on the held-out patch pairs --------------------------------------
    eval_pairs = 1 if ctx.quick else recipes.HardNetTask.eval_pairs
    pp, labelled = recipes.heldout_patch_pairs(eval_pairs)
    describe = local_features.hardnet_describe(nets["hardnet"])
    fpr, pos, neg = recipes.fpr95_of(describe(pp.anchors), describe(pp.positives), labelled)
    hand = recipes.handcrafted_patch_fpr95(eval_pairs)
    ctx.figures["hardnet_fpr95"] = {"hardnet": fpr, "raw_pixels": hand["raw_pixels"][0], "sift": hand["sift"][0],
                                    "labelled_pairs": int(len(labelled[2]))}
    match_plots.save_distance_histograms(
        [("raw pixels", *hand["raw_pixels"][1:], hand["raw_pixels"][0]), ("SIFT", *hand["sift"][1:], hand["sift"][0]),
         ("HardNet", pos, neg, fpr)], ctx.image_path("features_hardnet_distances.png"),
        "held-out patch pairs: distances of matching and non-matching pairs (dashed: 95% recall)")
    ctx.rows.append(Row(network="hardnet", task="patch verification, held-out patch pairs",
                        metric="FPR95 (lower is better)", baseline="raw pixels / SIFT descriptor (same patches)",
                        baseline_figure=f"{hand['raw_pixels'][0]:.3f} / {hand['sift'][0]:.3f} "
                                        f"({len(labelled[2])} pairs)",
                        figure=f"{fpr:.3f}", training_time=training_time(metrics["hardnet"]),
                        speed_ratio=ratio_text["hardnet"]))

    # -- HardNet against SIFT descriptors on the same SIFT keypoints ----------------------------------
    pairs_per_image = 1 if ctx.quick else recipes.R2D2Task.eval_pairs_per_image
    grey_pairs = fd.heldout_pairs(pairs_per_image, size=(256, 256), seed=0, gray=True)
    sift_res, hard_res = [], []
    for pair in grey_pairs:
        s1, h1 = baselines.sift_and_patch_features(pair.source, describe)
        s2, h2 = baselines.sift_and_patch_features(pair.target, describe)
        sift_res.append(baselines.match_features(s1, s2, pair.correspond))
        hard_res.append(baselines.match_features(h1, h2, pair.correspond))
    s_avg, h_avg = summary(sift_res), summary(hard_res)
    ctx.figures["hardnet_on_sift_keypoints"] = {"sift": s_avg, "hardnet": h_avg}
    ctx.rows.append(Row(network="hardnet", task="matching on SIFT keypoints, held-out homography pairs",
                        metric="MMA @1 / @3 / @5 px; s per image", baseline="SIFT descriptors, same keypoints",
                        baseline_figure=f"{mma(s_avg)} ({s_avg['matches']} matches); "
                                        f"{s_avg['seconds_per_image']:.3f} s (detect + describe)",
                        figure=f"{mma(h_avg)} ({h_avg['matches']} matches); {h_avg['seconds_per_image']:.3f} s "
                               f"(patches + network, after SIFT detection)",
                        training_time=training_time(metrics["hardnet"]), speed_ratio=ratio_text["hardnet"]))

    # -- R2D2 against SIFT: held-out homography pairs (colour) -----------------------------------------
    sift_res, r2_res = [], []
    for pair in fd.heldout_pairs(pairs_per_image, size=(256, 256), seed=0, gray=False):
        f1, f2 = baselines.sift_features(pair.source), baselines.sift_features(pair.target)
        sift_res.append(baselines.match_features(f1, f2, pair.correspond))
        *_, r = recipes.r2d2_pair_accuracy(nets["r2d2"], pair.source, pair.target, pair.correspond,
                                           max(1, len(f1.xy)), max(1, len(f2.xy)))
        r2_res.append(r)
    s_avg, r_avg = summary(sift_res), summary(r2_res)
    ctx.figures["r2d2_heldout_homographies"] = {"sift": s_avg, "r2d2": r_avg}
    ctx.rows.append(Row(network="r2d2", task="matching, held-out homography pairs (256x256)",
                        metric="MMA @1 / @3 / @5 px; s per image", baseline="SIFT (skimage, mutual NN)",
                        baseline_figure=f"{mma(s_avg)} ({s_avg['matches']} matches); {s_avg['seconds_per_image']:.3f} s",
                        figure=f"{mma(r_avg)} ({r_avg['matches']} matches, as many keypoints as SIFT); "
                               f"{r_avg['seconds_per_image']:.3f} s",
                        training_time=training_time(metrics["r2d2"]), speed_ratio=ratio_text["r2d2"]))

    # -- R2D2 against SIFT: the motorcycle stereo pair, nobody trained on it ---------------------------
    stereo = fd.stereo_pair(scale=QUICK_STEREO_SCALE if ctx.quick else 1.0, gray=False)
    f1, f2 = baselines.sift_features(stereo.left), baselines.sift_features(stereo.right)
    s_st = baselines.match_features(f1, f2, stereo.correspond)
    g1, g2, r_st = recipes.r2d2_pair_accuracy(nets["r2d2"], stereo.left, stereo.right, stereo.correspond,
                                              len(f1.xy), len(f2.xy))
    size = "x".join(map(str, stereo.disparity.shape))
    ctx.figures["r2d2_stereo"] = {"sift": s_st, "r2d2": r_st, "image_size": size}
    ctx.rows.append(Row(network="r2d2", task=f"matching, motorcycle stereo pair ({size})",
                        metric="MMA @1 / @3 / @5 px; s per image", baseline="SIFT (skimage, mutual NN)",
                        baseline_figure=f"{mma(s_st)} ({s_st['matches']} matches); {s_st['seconds_per_image']:.2f} s",
                        figure=f"{mma(r_st)} ({r_st['matches']} matches); {r_st['seconds_per_image']:.2f} s",
                        training_time=training_time(metrics["r2d2"]), speed_ratio=ratio_text["r2d2"]))
    panels = []
    for name, a, b, r in (("SIFT", f1, f2, s_st), ("R2D2 (small)", g1, g2, r_st)):
        m = matching.mutual_nearest_neighbours(a.descriptors, b.descriptors)
        panels.append(dict(image1=stereo.left, image2=stereo.right, xy1=a.xy, xy2=b.xy, matches=m,
                           correspond=stereo.correspond,
                           title=f"{name}: {r['matches']} matches with known disparity, MMA@3 {r['mma@3']:.3f}, "
                                 f"{r['seconds_per_image']:.2f} s per image (green: within 3 px, red: not; "
                                 f"300 drawn)"))
    match_plots.save_matches_figure(panels, ctx.image_path("features_stereo_matches.png"),
                                    "motorcycle stereo pair (held out): SIFT against R2D2")
    ctx.figures["runs"] = dict(runs)

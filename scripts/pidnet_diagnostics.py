"""Why PIDNet-S stays near the class prior on synthetic shapes (docs/results.md, segmentation section):
the measurements behind the diagnosis, on the torch twin (`--twin`, ~0.2 s per step here) or fastcnn.

    PYTHONPATH=$PWD python scripts/pidnet_diagnostics.py oracle                 # can 1/8 logits represent the shapes?
    PYTHONPATH=$PWD python scripts/pidnet_diagnostics.py branches --twin --steps 800 --every 200
    PYTHONPATH=$PWD python scripts/pidnet_diagnostics.py branches --twin --steps 400 --terms p   # the P head alone
    PYTHONPATH=$PWD python scripts/pidnet_diagnostics.py branches --twin --steps 200 --terms p --ablate pag \
        --ablate plain_head --ablate pool_stem --option planes=32                        # probe-only patches
    PYTHONPATH=$PWD python scripts/pidnet_diagnostics.py unet --steps 400 --level 3   # a plain U-Net, output at 1/8
    PYTHONPATH=$PWD python scripts/pidnet_diagnostics.py classify --steps 400 [--plain]  # one shape per image: its class?

`branches` trains the recipe and, every --every steps, prints each loss term, the gradient norm each term
sends into each branch (stem, I, P, D, Light-Bag, heads), the Pag gates' mean and saturated share, and the
boundary-aware (BAS) term's pixels (share of the image with sigmoid(D) > 0.8 and how many are true
boundaries); at the end the test mIoU of the P head and of the main output (64 test images). `unet` is a
sanity reference only (a torch U-Net, not a zoo network) trained by the same Segmenter recipe.
"""
from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
from torch import nn

import fastcnn  # noqa: F401
from fastcnn.eval.segmentation import SegmentationScore, confusion_matrix, mean_iou
from fastcnn.models import FAST, TORCH
from fastcnn.train.recipes import RECIPES
from fastcnn.train.recipes.segmentation import IGNORE, IMAGE_SIZE, NUM_CLASSES, test_set
from fastcnn.train.task import Settings

BRANCHES = {"stem+layer1-2": ("conv1.", "layer1.", "layer2."), "I": ("layer3.", "layer4.", "layer5.", "spp."),
            "P": ("layer3_.", "layer4_.", "layer5_.", "compression", "pag"), "D": ("layer3_d", "layer4_d", "layer5_d", "diff"),
            "bag": ("dfm.",), "head_p": ("seghead_p.",), "head_d": ("seghead_d.",), "final": ("final_layer.",)}


def branch_of(name: str) -> str:
    return next((b for b, prefixes in BRANCHES.items() if name.startswith(prefixes)), "other")


def test_miou(pred, labels) -> tuple:
    score = SegmentationScore(NUM_CLASSES)
    score.update(pred, labels)
    res = score.result()
    return res["mIoU"], [round(v, 3) for v in res["iou_per_class"]]


def oracle(args):
    """mIoU of the true labels pooled to 1/f (class shares) and bilinearly upsampled back, as the heads'
    logits are: the best a head at that resolution can do."""
    ts = test_set(args.seed, 256)
    labels = torch.stack([ts[i][1] for i in range(len(ts))])
    onehot = F.one_hot(labels, NUM_CLASSES).permute(0, 3, 1, 2).float()
    for f in (4, 8, 16, 32):
        up = F.interpolate(F.avg_pool2d(onehot, f), size=labels.shape[-2:], mode="bilinear", align_corners=False)
        cm = confusion_matrix(up.argmax(1).numpy(), labels.numpy(), NUM_CLASSES)
        print(f"labels at 1/{f} ({IMAGE_SIZE // f}x{IMAGE_SIZE // f}) and back: mIoU {mean_iou(cm):.3f}")


def batches(task, steps, batch_size=16):
    n = len(task.train_set)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(0))
    for step in range(steps):
        idx = order[(step * batch_size) % n:][:batch_size].tolist()
        yield step, [torch.stack(t) for t in zip(*[task.train_set[i] for i in idx])]


def ablate(task, net, what, steps):
    """Probe-only patches of the network (not the zoo's PIDNet-S), to find which part slows learning."""
    if "pag" in what:          # the P branch keeps its own features (no fusion with the I branch)
        for name in ("pag3", "pag4"):
            getattr(net, name).forward = lambda x, y: x
    if "init" in what or "head_init" in what:   # torch's default init instead of the reference's fan_out
        heads = {id(getattr(net, h).conv2) for h in ("seghead_p", "seghead_d", "final_layer")}
        for m in net.modules():
            if isinstance(m, nn.Conv2d) and ("init" in what or id(m) in heads):
                m.reset_parameters()
    if "plain_head" in what:   # the P head as ReLU + 1x1 convolution
        net.seghead_p = nn.Sequential(nn.ReLU(), nn.Conv2d(net.seghead_p.conv1.in_channels, NUM_CLASSES, 1))
    if "pool_stem" in what:    # full-resolution convolutions and max pools instead of two stride-2 convolutions
        c = net.conv1[0].out_channels
        net.conv1 = nn.Sequential(*conv_block(3, c), nn.MaxPool2d(2), nn.Conv2d(c, c, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(c), nn.ReLU(), nn.MaxPool2d(2))
    if {"plain_head", "pool_stem"} & set(what):   # new parameters: a new optimiser and schedule
        opt = task.optimizers["model"]
        task.optimizers["model"] = type(opt)(net.parameters(), **{k: opt.defaults[k] for k in ("lr", "weight_decay")})
        task.schedulers["model"] = torch.optim.lr_scheduler.LambdaLR(
            task.optimizers["model"], lambda s: max(0.0, 1 - s / steps) ** task.poly_power)


def branches(args):
    options = dict(kv.split("=", 1) for kv in args.option)
    if "planes" in options:
        options["planes"] = int(options["planes"])
    task = RECIPES["pidnet_s"](Settings(size="small", steps=args.steps, batch_size=16, lib=TORCH if args.twin else FAST,
                                        options=options))
    ablate(task, task.nets["model"], args.ablate, args.steps)
    if args.upsample > 1:   # the images enlarged (128x128: the small network's design size), outputs back to 64x64
        def forward(x, f=args.upsample):
            big = F.interpolate(task.normalise(x), scale_factor=f, mode="bilinear", align_corners=False)
            return tuple(F.interpolate(o, size=x.shape[-2:], mode="bilinear", align_corners=False) for o in task.fwd["model"](big))
        task.forward = forward
    net, opt, sched = task.nets["model"], task.optimizers["model"], task.schedulers["model"]
    gates = {}

    def pag_gate(mod, inp, out):   # recompute the gate sigma of PagFM.forward
        x, y = inp
        y_q = F.interpolate(mod.f_y(y), size=x.shape[-2:], mode="bilinear", align_corners=False)
        s = torch.sigmoid((mod.f_x(x) * y_q).sum(1, keepdim=True)).detach()
        gates[mod.gate_name] = (s.mean().item(), ((s > 0.99) | (s < 0.01)).float().mean().item())
    for name in ("pag3", "pag4"):
        getattr(net, name).gate_name = name
        getattr(net, name).register_forward_hook(pag_gate)
    task.train_mode(True)
    t0 = time.perf_counter()
    for step, (x, labels, boundary) in batches(task, args.steps):
        p, main, d = task.forward(x)
        bd_labels = torch.where(torch.sigmoid(d.detach()[:, 0]) > task.boundary_thresh, labels, torch.full_like(labels, IGNORE))
        terms = {"0.4 CE(P)": task.p_weight * task.ce(p, labels), "OHEM(main)": task.ohem_ce(main, labels),
                 "20 BCE(D)": task.bce_weight * task.boundary_bce(d, boundary), "BAS": task.sb_weight * task.ohem_ce(main, bd_labels)}
        if args.terms == "p":   # the P head alone: a plain CNN path with its own cross-entropy
            terms = {"0.4 CE(P)": terms["0.4 CE(P)"]}
        elif args.terms == "no_bas":
            del terms["BAS"]
        if step % args.every == 0 or step == args.steps - 1:
            print(f"step {step} ({time.perf_counter() - t0:.0f} s): " + ", ".join(f"{k} {v.item():.3f}" for k, v in terms.items()))
            for k, t in terms.items():
                opt.zero_grad(set_to_none=True)
                t.backward(retain_graph=True)
                sq = {}
                for name, prm in net.named_parameters():
                    if prm.grad is not None:
                        sq[branch_of(name)] = sq.get(branch_of(name), 0.0) + prm.grad.pow(2).sum().item()
                print(f"  grad norm of {k:10s}: " + " ".join(f"{b} {sq.get(b, 0.0) ** 0.5:.3g}" for b in BRANCHES))
            bas = bd_labels != IGNORE
            print("  Pag gates: " + ", ".join(f"{k} mean {m:.3f} saturated {s:.3f}" for k, (m, s) in gates.items())
                  + f"; BAS pixels {bas.float().mean():.3f} of the image, {(boundary.bool() & bas).sum().item() / max(1, bas.sum().item()):.3f}"
                  f" of them true boundary (boundary share {boundary.mean():.3f})")
        opt.zero_grad(set_to_none=True)
        sum(terms.values()).backward()
        opt.step()
        sched.step()
    task.train_mode(False)
    with torch.no_grad():
        x, labels, _ = task.test_set_batch(0, 64)
        p, main, _ = task.forward(x)
    for name, out in (("P head", p), ("main", main)):
        miou, ious = test_miou(out.argmax(1), labels)
        print(f"test (64 images) {name}: mIoU {miou:.3f}, IoU per class {ious}, predicted background {(out.argmax(1) == 0).float().mean():.3f}")


def conv_block(c_in, c_out, stride=1):
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(),
                         nn.Conv2d(c_out, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU())


class TinyUNet(nn.Module):
    """Plain U-Net (max-pool encoder, transposed-conv decoder with skips); `level` > 0 stops the decoder at
    1/2**level and upsamples its logits bilinearly, as PIDNet's heads are (level 3: 1/8); `strided`
    downsamples by stride-2 convolutions instead of max pooling, as PIDNet does."""

    def __init__(self, width=16, depth=3, level=0, strided=False):
        super().__init__()
        ch = [width * 2 ** i for i in range(depth + 1)]
        self.level, self.strided = level, strided
        self.enc = nn.ModuleList([conv_block(3, ch[0])] + [conv_block(ch[i], ch[i + 1], 2 if strided else 1) for i in range(depth)])
        self.up = nn.ModuleList([nn.ConvTranspose2d(ch[i + 1], ch[i], 2, 2) for i in range(depth)])
        self.dec = nn.ModuleList([conv_block(2 * ch[i], ch[i]) for i in range(depth)])
        self.out = nn.Conv2d(ch[level], NUM_CLASSES, 1)

    def forward(self, x):
        skips = []
        for i, block in enumerate(self.enc):
            x = block(x if i == 0 or self.strided else F.max_pool2d(x, 2))
            skips.append(x)
        for i in reversed(range(self.level, len(self.up))):
            x = self.dec[i](torch.cat([self.up[i](x), skips[i]], 1))
        return F.interpolate(self.out(x), size=skips[0].shape[-2:], mode="bilinear", align_corners=False)


def unet(args):
    task = RECIPES["segnet_basic"](Settings(size="small", steps=args.steps, batch_size=16, lib=TORCH))
    net = TinyUNet(args.width, 3, args.level, args.strided)
    task.nets["model"] = task.fwd["model"] = net
    opt = torch.optim.Adam(net.parameters(), lr=task.lr, weight_decay=task.weight_decay)
    task.optimizers["model"] = opt
    task.schedulers["model"] = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: max(0.0, 1 - s / args.steps) ** task.poly_power)
    print(f"tiny U-Net width {args.width}, output at 1/{2 ** args.level}{', strided' if args.strided else ''}: {sum(p.numel() for p in net.parameters()):,} parameters")
    task.train_mode(True)
    for step, batch in batches(task, args.steps):
        loss = task.step(batch, step)["loss"]
        if (step + 1) % args.every == 0:
            task.train_mode(False)
            with torch.no_grad():
                x, labels, _ = task.test_set_batch(0, 256)
                miou, ious = test_miou(task.predict(x), labels)
            task.train_mode(True)
            print(f"step {step + 1}: loss {loss:.3f}, test (256 images) mIoU {miou:.3f}, IoU per class {ious}", flush=True)


def single_shape_batches(seed, first, n, batch_size=32):
    """Images with exactly one shape (the segmentation generator, another seed stream) and its class 0..3."""
    from fastcnn.data.segmentation import make_sample

    samples = [make_sample(seed, "train", i, (IMAGE_SIZE, IMAGE_SIZE), 3, max_shapes=1) for i in range(first, first + n)]
    x = torch.stack([torch.from_numpy(s.image.transpose(2, 0, 1).copy()) for s in samples])
    y = torch.tensor([int(s.labels.max()) - 1 for s in samples])
    return list(zip(x.split(batch_size), y.split(batch_size)))


def classify(args):
    """Can the I branch (stem, layer1-5, global average pool, a linear layer) tell the four shapes apart
    on images with a single shape? `--plain`: a plain max-pool CNN (the U-Net's encoder) instead."""
    task = RECIPES["pidnet_s"](Settings(size="small", steps=1, lib=TORCH))
    if args.plain:
        encoder = TinyUNet(args.width, 3).enc
        def features(x):
            for i, block in enumerate(encoder):
                x = block(x if i == 0 else F.max_pool2d(x, 2))
            return x
        body, width = encoder, args.width * 8
    else:
        net = task.nets["model"]
        body = nn.ModuleList([net.conv1, net.layer1, net.layer2, net.layer3, net.layer4, net.layer5])
        def features(x):
            x = net.layer1(net.conv1(x))
            for layer in (net.layer2, net.layer3, net.layer4):
                x = net.relu(layer(net.relu(x)))
            return net.layer5(x)
        width = net.layer5[-1].bn3.num_features
    head = nn.Linear(width, 4)
    params = list(body.parameters()) + list(head.parameters())
    print(f"{'plain CNN' if args.plain else 'PIDNet-S I branch'}: {sum(p.numel() for p in params):,} parameters")
    opt = torch.optim.Adam(params, lr=1e-3, weight_decay=1e-4)
    train = single_shape_batches(1000 + args.seed, 0, 4096)
    held_out = single_shape_batches(1000 + args.seed, 100_000, 256, 256)[0]
    logits = lambda x: head(features(task.normalise(x)).mean((2, 3)))
    body.train()
    hits = []
    for step in range(args.steps):
        x, y = train[step % len(train)]
        out = logits(x)
        loss = F.cross_entropy(out, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        hits.append((out.argmax(1) == y).float().mean().item())
        if (step + 1) % args.every == 0:
            print(f"step {step + 1}: loss {loss.item():.3f}, training accuracy (last {args.every}) "
                  f"{sum(hits[-args.every:]) / args.every:.3f}", flush=True)
    body.eval()
    with torch.no_grad():
        print(f"held-out accuracy (256 images, chance 0.25): {(logits(held_out[0]).argmax(1) == held_out[1]).float().mean():.3f}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("what", choices=("oracle", "branches", "unet", "classify"))
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--every", type=int, default=100)
    p.add_argument("--twin", action="store_true", help="branches: the torch twin (same recipe, seed, data)")
    p.add_argument("--terms", choices=("all", "p", "no_bas"), default="all",
                   help="branches: train on every loss term, the P head's alone, or all but the boundary-aware one")
    p.add_argument("--ablate", action="append", default=[], choices=("pag", "init", "head_init", "plain_head", "pool_stem"),
                   help="branches: probe-only patches of the network (repeatable)")
    p.add_argument("--upsample", type=int, default=1, help="branches: enlarge the images by this factor (outputs resized back)")
    p.add_argument("--option", action="append", default=[], help="branches: recipe option NAME=VALUE (planes, optimizer)")
    p.add_argument("--width", type=int, default=16, help="unet, classify --plain: channels at full resolution")
    p.add_argument("--plain", action="store_true", help="classify: a plain max-pool CNN instead of the I branch")
    p.add_argument("--level", type=int, default=0, help="unet: decoder stops at 1/2**level")
    p.add_argument("--strided", action="store_true", help="unet: stride-2 convolutions instead of max pooling")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    {"oracle": oracle, "branches": branches, "unet": unet, "classify": classify}[args.what](args)


if __name__ == "__main__":
    main()

"""The local-feature losses of HardNet (Mishchuk et al. 2017) and R2D2 (Revaud et al. 2019), written against a
functional library ``F`` (fastcnn.ops, or torch's for the twin): every non-trivial computation is an op of
F; indexing, +, *, sums and cumulative sums are parameter-free glue.

Shapes: descriptors are L2-normalised rows (HardNet) or L2-normalised channels of a map (R2D2); ``flow`` is
R2D2's "aflow": [B, 2, H, W], the (x, y) position in the second image of every pixel of the first, NaN
where the pixel has no correspondence."""
from __future__ import annotations

import torch


def _abs(F, x):
    return F.relu(x) + F.relu(-x)


# ------------------------------------------------------------------------------------------ HardNet

def descriptor_distances(F, a, p, eps: float = 1e-6):
    """[N, M] Euclidean distances between rows of L2-normalised a [N, D] and p [M, D]:
    sqrt(2 - 2 a.p), by one GEMM (HardNet's distance_matrix_vector)."""
    sim = F.matmul(a, p.transpose(0, 1))
    return (F.relu(2.0 - 2.0 * sim) + eps) ** 0.5


def hardest_triplet_loss(F, anchors, positives, margin: float = 1.0):
    """HardNet's loss: for each matching pair (a_i, p_i) the hardest negative is the closest non-matching
    descriptor min(min_j d(a_i, p_j), min_j d(a_j, p_i)), j != i; loss = mean max(0, margin + d(a_i, p_i)
    - d_neg). Returns (loss, positive distances, hardest-negative distances)."""
    d = descriptor_distances(F, anchors, positives)
    n = d.shape[0]
    if n < 2:
        raise ValueError(f"anchors: the hardest-in-batch loss needs at least 2 pairs, got {n}")
    pos = torch.diagonal(d)
    # the diagonal (the positives) must never be a row's or a column's minimum: lift it by 10 (d <= 2)
    masked = d + 10.0 * torch.eye(n, dtype=d.dtype, device=d.device)
    neg = torch.minimum(masked.min(dim=1).values, masked.min(dim=0).values)
    loss = F.relu(margin + pos - neg).mean()
    return loss, pos.detach(), neg.detach()


# ------------------------------------------------------------------------------------------ R2D2: AP

def quantize(F, scores, nq: int = 20, low: float = 0.0, high: float = 1.0):
    """R2D2's soft histogram binning of ``scores`` [N, M] into ``nq`` triangular bins [N, nq, M], bin 0 at
    ``high`` (bins go from most to least similar); the first and last bins are open-ended, so each score's
    memberships sum to 1 (APLoss's 1x1 Conv1d quantizer with its fixed weights)."""
    if nq < 2:
        raise ValueError(f"nq: expected at least 2 bins, got {nq}")
    a = (nq - 1) / (high - low)
    centres = high - torch.arange(nq, dtype=scores.dtype, device=scores.device) / a
    diff = scores[:, None, :] - centres[None, :, None]           # [N, nq, M]
    dist = _abs(F, diff)
    dist = torch.cat([F.relu(-diff[:, :1]), dist[:, 1:-1], F.relu(diff[:, -1:])], dim=1)
    return F.relu(1.0 - a * dist)


def average_precision(F, scores, labels, nq: int = 20, low: float = 0.0, high: float = 1.0):
    """Differentiable AP of each row (APLoss.compute_AP): the scores [N, M] ranked by quantised bins,
    labels [N, M] 1 for a correct match. Precision at bin k = positives in bins <= k / samples in bins <= k,
    AP = sum_k precision_k * (positives in bin k / positives)."""
    q = quantize(F, scores, nq, low, high)
    labels = labels.to(scores.dtype)
    in_bin = q.sum(dim=-1)                                        # [N, nq]
    pos_in_bin = (q * labels[:, None, :]).sum(dim=-1)
    precision = pos_in_bin.cumsum(dim=-1) / (1e-16 + in_bin.cumsum(dim=-1))
    recall = pos_in_bin / pos_in_bin.sum(dim=-1, keepdim=True)
    return (precision * recall).sum(dim=-1)


class PixelSampler:
    """R2D2's NghSampler2: query pixels on a grid of ``step`` px in the first image (random offsets: the
    reference's subq = -step); for each, the positives are the second image's descriptors within
    ``pos_d`` px of the true position (max-pooled to the best one), the negatives the ring between
    ``neg_d`` and ``ngh`` px around it plus a grid of ``step`` px over every second image of the batch
    (distractors closer than ``neg_d`` to the true position are zeroed). Reference values: ngh 7,
    pos_d 3, neg_d 5, step 8, border 16."""

    def __init__(self, ngh: int = 7, pos_d: int = 3, neg_d: int = 5, step: int = 8, border: int = 16):
        if not 0 <= pos_d < neg_d <= ngh:
            raise ValueError(f"need 0 <= pos_d < neg_d <= ngh, got {pos_d}, {neg_d}, {ngh}")
        self.ngh, self.pos_d, self.neg_d, self.step, self.border = ngh, pos_d, neg_d, step, border
        offsets = [(i, j) for j in range(-ngh, ngh + 1) for i in range(-ngh, ngh + 1)]
        self.pos_offsets = torch.tensor([o for o in offsets if o[0] ** 2 + o[1] ** 2 <= pos_d ** 2]).t()
        self.neg_offsets = torch.tensor([o for o in offsets if neg_d ** 2 <= o[0] ** 2 + o[1] ** 2 <= ngh ** 2]).t()

    def grid(self, b: int, h: int, w: int, random: bool, device):
        if random:
            n = max(1, (h - 2 * self.border) * (w - 2 * self.border) // self.step ** 2)
            x = torch.randint(self.border, w - self.border, (n,), device=device)
            y = torch.randint(self.border, h - self.border, (n,), device=device)
        else:
            ys, xs = torch.meshgrid(torch.arange(self.border, h - self.border, self.step, device=device),
                                    torch.arange(self.border, w - self.border, self.step, device=device), indexing="ij")
            x, y = xs.reshape(-1), ys.reshape(-1)
        n = len(x)
        return (torch.arange(b, device=device).repeat_interleave(n), y.repeat(b), x.repeat(b))

    def __call__(self, F, desc1, desc2, rel1, rel2, flow):
        """Scores [Q, P + K] (the best positive first), labels, the valid-query mask [Q] and the query
        reliability [Q] (mean of the query pixel's and its best positive's, as the reference)."""
        B, _, H, W = desc1.shape
        if min(H, W) <= 2 * self.border:
            raise ValueError(f"desc1: {H}x{W} maps leave no query pixel inside a border of {self.border}")
        b1, y1, x1 = self.grid(B, H, W, True, desc1.device)
        f1 = desc1[b1, :, y1, x1]                                 # [Q, D]
        target = flow[b1, :, y1, x1]                              # [Q, 2] (x, y); NaN: no match
        valid = torch.isfinite(target).all(dim=1)
        xy2 = torch.nan_to_num(target, nan=-1e4).add(0.5).floor().long()
        valid &= (xy2[:, 0] >= 0) & (xy2[:, 0] < W) & (xy2[:, 1] >= 0) & (xy2[:, 1] < H)

        def around(offsets):
            x = (xy2[:, 0:1] + offsets[0][None].to(xy2.device)).clamp(0, W - 1)
            y = (xy2[:, 1:2] + offsets[1][None].to(xy2.device)).clamp(0, H - 1)
            return x, y

        px, py = around(self.pos_offsets)
        bq = b1[:, None].expand_as(px)
        pscores = (f1[:, None, :] * desc2[bq, :, py, px]).sum(dim=-1)
        pscores, best = pscores.max(dim=1, keepdim=True)
        sel = torch.arange(len(best), device=best.device)
        rel = (rel1[b1, 0, y1, x1] + rel2[b1, 0, py[sel, best[:, 0]], px[sel, best[:, 0]]]) / 2
        nx, ny = around(self.neg_offsets)
        nscores = (f1[:, None, :] * desc2[b1[:, None].expand_as(nx), :, ny, nx]).sum(dim=-1)
        b3, y3, x3 = self.grid(B, H, W, True, desc1.device)
        dscores = F.matmul(f1, desc2[b3, :, y3, x3].transpose(0, 1))
        near = ((x3[None] - xy2[:, 0:1]) ** 2 + (y3[None] - xy2[:, 1:2]) ** 2 < self.neg_d ** 2) & (b3[None] == b1[:, None])
        dscores = dscores * (~near).to(dscores.dtype)
        scores = torch.cat([pscores, nscores, dscores], dim=1)
        labels = torch.zeros_like(scores)
        labels[:, 0] = 1
        return scores, labels, valid, rel


def reliability_loss(F, sampler, desc1, desc2, rel1, rel2, flow, base: float = 0.5, nq: int = 20,
                     unweighted_ap: bool = False):
    """R2D2's ReliabilityLoss: 1 - AP * R - (1 - R) * base per query pixel (R its reliability), averaged
    over queries with a correspondence. Also returns the mean AP (detached) for the logs.

    ``unweighted_ap``: the descriptors learn from 1 - AP at every query and the reliability from the
    paper's term with AP held constant (the same gradient for R, -(AP - base); for the descriptors -1
    instead of -R). While AP < base the paper's form drives R to 0 and with it the descriptors' gradient:
    a short run of the small network ended with median reliability 1e-38 and stalled descriptors."""
    scores, labels, valid, rel = sampler(F, desc1, desc2, rel1, rel2, flow)
    if not bool(valid.any()):
        zero = (desc1.sum() + rel1.sum()) * 0.0
        return zero, float("nan")
    ap = average_precision(F, scores[valid], labels[valid], nq)
    r = rel[valid]
    if unweighted_ap:
        loss = (1.0 - ap).mean() + (1.0 - ap.detach() * r - (1.0 - r) * base).mean()
    else:
        loss = (1.0 - ap * r - (1.0 - r) * base).mean()
    return loss, float(ap.detach().mean())


# ------------------------------------------------------------------------------------------ R2D2: repeatability

def flow_to_grid(flow):
    """R2D2's aflow [B, 2, H, W] (pixel x, y in the second image) -> grid_sample's [B, H, W, 2] in [-1, 1]
    (align_corners=False convention: pixel centres at (2i + 1) / size - 1); NaN -> far outside."""
    _, _, h, w = flow.shape
    gx = (2.0 * flow[:, 0] + 1.0) / w - 1.0
    gy = (2.0 * flow[:, 1] + 1.0) / h - 1.0
    return torch.nan_to_num(torch.stack([gx, gy], dim=-1), nan=-10.0)


def cosim_loss(F, rep1, rep2, flow, n: int = 16):
    """R2D2's CosimLoss: 1 - mean cosine similarity of the first repeatability map and the second warped
    onto it, over n x n patches with stride n/2. Patches that contain a pixel without correspondence are
    left out (the reference warps them with border padding; their content is unrelated)."""
    grid = flow_to_grid(flow)
    warped = F.grid_sample(rep2, grid, mode="bilinear", padding_mode="border", align_corners=False)
    valid = torch.isfinite(flow).all(dim=1, keepdim=True).to(rep1.dtype)
    p1 = F.normalize(F.unfold(rep1, n, stride=n // 2).transpose(1, 2), p=2.0, dim=2)
    p2 = F.normalize(F.unfold(warped, n, stride=n // 2).transpose(1, 2), p=2.0, dim=2)
    keep = (F.unfold(valid, n, stride=n // 2).min(dim=1).values > 0.5).to(rep1.dtype)   # [B, L]
    cosim = (p1 * p2).sum(dim=2)
    return 1.0 - (cosim * keep).sum() / keep.sum().clamp(min=1.0)


def peaky_loss(F, rep, n: int = 16):
    """R2D2's PeakyLoss for one map: 1 - mean(maxpool_{n+1}(s) - avgpool_{n+1}(s)), s = the map after a 3x3
    mean (which removes single-pixel spikes)."""
    s = F.avg_pool2d(rep, 3, stride=1, padding=1)
    return 1.0 - (F.max_pool2d(s, n + 1, stride=1, padding=n // 2) - F.avg_pool2d(s, n + 1, stride=1, padding=n // 2)).mean()


def r2d2_losses(F, sampler, out1, out2, flow, n: int = 16, nq: int = 20, unweighted_ap: bool = False):
    """The three terms of R2D2's training objective (weights 1, 1, 1) for outputs of the two images."""
    rel, ap = reliability_loss(F, sampler, out1["descriptors"], out2["descriptors"], out1["reliability"],
                               out2["reliability"], flow, nq=nq, unweighted_ap=unweighted_ap)
    cos = cosim_loss(F, out1["repeatability"], out2["repeatability"], flow, n)
    peaky = (peaky_loss(F, out1["repeatability"], n) + peaky_loss(F, out2["repeatability"], n)) / 2
    return {"reliability": rel, "cosim": cos, "peaky": peaky, "ap": ap}


__all__ = ["descriptor_distances", "hardest_triplet_loss", "quantize", "average_precision", "PixelSampler",
           "reliability_loss", "flow_to_grid", "cosim_loss", "peaky_loss", "r2d2_losses"]

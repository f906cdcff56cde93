"""Evaluation of the vision networks against the lecture's baselines (issue 13): one module per task.

segmentation (confusion matrix, mIoU, pixel accuracy, boundary F1), matching (mutual nearest neighbours,
mean matching accuracy, FPR95), superres (PSNR / SSIM on Y), baselines (SIFT, bicubic), fid (Frechet
distance of feature sets), filters (Gaussian derivatives, patch PCA, explained energy, plots).
Plain numpy / scipy / skimage / torch: no training code here.
"""

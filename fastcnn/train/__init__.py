"""Training the zoo networks on shipped data: `fastcnn train NAME` (see cli.py, docs/training.md).

task.py      what a recipe provides (networks, optimizers, data, step, metric)
recipes/     one recipe per network (classify, autoencoders, generative)
loop.py      the loop: data order, steps, evaluations, checkpoints, progress bar
checkpoint.py  atomic checkpoints, resume
distributed.py DistributedDataParallel under torchrun
compare.py   the same recipe on the torch twin: time to target
"""
from .cli import main

__all__ = ["main"]

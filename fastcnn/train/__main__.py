"""python -m fastcnn.train NAME ... (also what `torchrun --nproc_per_node=N -m fastcnn.train` runs)."""
import sys

from .cli import main

sys.exit(main())

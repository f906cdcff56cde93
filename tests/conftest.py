import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
torch.manual_seed(0)
# float32 results are checked against float64 references at float32 tolerance: TF32 (torch's default
# for cuDNN convolutions, which the triton implicit_gemm algorithm follows) is switched on only by
# the tests that check it (tests/backends/triton/test_triton_implicit_gemm.py).
torch.backends.cudnn.allow_tf32 = False
torch.backends.cuda.matmul.allow_tf32 = False

"""cpu backend: the C++ extension fastcnn._C (csrc/). One module per kernel family."""

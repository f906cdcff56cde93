import pytest

import fastcnn  # noqa: F401  (sets up triton's interpreter before anything else imports triton)


@pytest.fixture(autouse=True)
def cpu_backend(monkeypatch):
    monkeypatch.setenv("FASTCNN_BACKEND", "cpu")

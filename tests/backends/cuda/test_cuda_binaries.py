"""The cuda backend's binaries without a GPU (fastcnn/backends/cuda/_binaries.py, fastcnn/_cache.py):
the NVRTC cache key follows the source, its headers, the GPU arch and the compiler; a cached binary
is loaded instead of compiled; writes are atomic and a read-only cache never breaks a run; a shipped
fatbin is used only when built from the current source for a GPU it holds code for; and, with nvcc
present, the build makes a fatbin with sm_80 and sm_90 code."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from fastcnn import _cache
from fastcnn.backends.cuda import _binaries


@pytest.fixture
def kernels(tmp_path):
    """A folder shaped like fastcnn/kernels/cuda with one family and one header."""
    d = tmp_path / "cuda"
    d.mkdir()
    (d / "tiny.cuh").write_text("#define SCALE 2.0f\n")
    (d / "tiny.cu").write_text('#include "tiny.cuh"\nextern "C" __global__ void twice(float* x) { x[threadIdx.x] *= SCALE; }\n')
    return d


def test_source_key_follows_the_source_and_every_header(kernels):
    key = _binaries.source_key("tiny", kernels)
    assert key == _binaries.source_key("tiny", kernels)
    (kernels / "tiny.cuh").write_text("#define SCALE 3.0f\n")
    changed_header = _binaries.source_key("tiny", kernels)
    assert changed_header != key
    (kernels / "tiny.cu").write_text((kernels / "tiny.cu").read_text() + "// edit\n")
    assert _binaries.source_key("tiny", kernels) not in (key, changed_header)


def test_source_key_follows_the_shared_headers(kernels):
    """kernels/shared (the headers the C++ extension includes too) is part of what the binary depends on."""
    shared = _binaries.shared_dir(kernels)
    shared.mkdir()
    (shared / "both.cuh").write_text("#define OFFSET 0\n")
    key = _binaries.source_key("tiny", kernels)
    (shared / "both.cuh").write_text("#define OFFSET 1\n")
    assert _binaries.source_key("tiny", kernels) != key
    assert f"-I{shared}" in _binaries.include_options(kernels)


def test_cache_key_separates_arch_and_compiler():
    keys = {_binaries.cache_key("abc", arch, compiler)
            for arch in ("sm_80", "sm_90") for compiler in ("nvrtc12.8-cupy13", "nvrtc13.0-cupy14")}
    assert len(keys) == 4
    assert _binaries.cache_key("abc", "sm_90", "x") == _binaries.cache_key("abc", "sm_90", "x")
    assert _binaries.cache_key("abd", "sm_90", "x") != _binaries.cache_key("abc", "sm_90", "x")


def test_cache_dir_rule(monkeypatch, tmp_path):
    monkeypatch.setenv("FASTCNN_CACHE_DIR", str(tmp_path / "a"))
    assert _cache.cache_dir() == tmp_path / "a"
    monkeypatch.delenv("FASTCNN_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert _cache.cache_dir() == tmp_path / "x" / "fastcnn"


def test_nvrtc_output_compiled_once_then_loaded(tmp_path):
    calls = []

    def compile_fn(source, options):
        calls.append(options)
        assert 'extern "C"' in source and "-std=c++17" in options
        return b"CUBIN-" + str(len(calls)).encode()

    first = _binaries.nvrtc_binary("activation", "sm_90", "nvrtc13.0", compile_fn, cache_dir=tmp_path)
    again = _binaries.nvrtc_binary("activation", "sm_90", "nvrtc13.0", compile_fn, cache_dir=tmp_path)
    assert first == again and first.read_bytes() == b"CUBIN-1" and len(calls) == 1
    assert first.parent == tmp_path / "cuda" and first.name.startswith("activation-")
    other_arch = _binaries.nvrtc_binary("activation", "sm_80", "nvrtc13.0", compile_fn, cache_dir=tmp_path)
    assert other_arch != first and len(calls) == 2
    assert sorted(p.name for p in (tmp_path / "cuda").iterdir()) == sorted([first.name, other_arch.name])  # no temp files


def test_unwritable_cache_still_runs(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    path = _binaries.nvrtc_binary("activation", "sm_90", "v", lambda s, o: b"BIN", cache_dir=blocker)
    try:
        assert path.read_bytes() == b"BIN" and blocker.is_file()
    finally:
        path.unlink()


def test_atomic_write_replaces_whole_files_only(tmp_path, monkeypatch):
    target = tmp_path / "sub" / "entry.bin"
    assert _cache.atomic_write(target, b"old") == target and target.read_bytes() == b"old"

    def fail(src, dst):
        raise OSError("disk full")
    monkeypatch.setattr(os, "replace", fail)
    assert _cache.atomic_write(target, b"new" * 1000) is None
    assert target.read_bytes() == b"old"  # a failed write leaves the previous entry whole
    assert [p.name for p in target.parent.iterdir()] == ["entry.bin"]  # and no temporary file


def test_shipped_fatbin_only_when_current_and_for_this_gpu(kernels):
    fatbin = kernels / "tiny.fatbin"
    fatbin.write_bytes(b"fatbin")
    assert _binaries.shipped_fatbin("tiny", (9, 0), kernels) is None  # no key file: not trusted
    (kernels / "tiny.fatbin.key").write_text(_binaries.source_key("tiny", kernels) + "\n")
    assert _binaries.shipped_fatbin("tiny", (9, 0), kernels) == fatbin
    assert _binaries.shipped_fatbin("tiny", (8, 6), kernels) == fatbin  # sm_80 cubin runs on 8.x
    for capability in ((7, 5), (10, 0), (12, 0)):
        assert _binaries.shipped_fatbin("tiny", capability, kernels) is None
    (kernels / "tiny.cu").write_text((kernels / "tiny.cu").read_text() + "// edited after the build\n")
    assert _binaries.shipped_fatbin("tiny", (9, 0), kernels) is None


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc not on PATH: fatbin build not checked")
def test_build_fatbins_holds_sm80_and_sm90(kernels):
    import triton

    assert _binaries.build_fatbins(shutil.which("nvcc"), kernels, jobs=1) == ["tiny"]
    assert _binaries.build_fatbins(shutil.which("nvcc"), kernels, jobs=1) == []  # current: not rebuilt
    assert _binaries.shipped_fatbin("tiny", (9, 0), kernels) == kernels / "tiny.fatbin"
    cuobjdump = Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / "cuobjdump"
    listing = subprocess.run([str(cuobjdump), "--list-elf", "--list-ptx", str(kernels / "tiny.fatbin")],
                             capture_output=True, text=True, check=True).stdout
    assert "sm_80" in listing and "sm_90" in listing, listing

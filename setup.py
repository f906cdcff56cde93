"""Build of fastcnn's cpu backend: one pybind11 extension, ``fastcnn._C``.

Kernel sources in ``csrc/kernels/`` are compiled once per instruction set (AVX-512, AVX2+FMA and a
portable x86-64 baseline), each copy in its own C++ namespace; ``csrc/host/`` and ``csrc/common/``
are compiled once and pick the copy that matches the running CPU (``csrc/common/isa.h``). A wheel
built here therefore also runs on an older x86-64.

``csrc/torchops/`` (the eager op layer: torch dispatcher ops on the same kernels, see
fastcnn/ops/_eager.py) is compiled once too, with torch's headers and ABI flag, and links c10 and
torch_cpu (so the extension must be rebuilt for another torch version, as any torch C++ extension);
without torch at build time it is left out.

Objects are rebuilt only when their source or a header it includes is newer (the compiler writes
each object's dependency list, ``-MMD``), and compiled in parallel, so an edit to one kernel file or
to a header only some files include recompiles just those.
"""
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from pybind11.setup_helpers import Pybind11Extension
from setuptools import setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent
CSRC = ROOT / "csrc"
# Headers both the C++ extension and the CUDA kernels include (ConvShape, conv/pool/resample geometry,
# the ISA inline namespace); CUDA-only headers stay in fastcnn/kernels/cuda, off this build's path.
SHARED_HEADERS = ROOT / "fastcnn" / "kernels" / "shared"

# Per-ISA compiler flags. The namespace macro keeps the three copies of each kernel apart.
ISA_FLAGS = {
    "avx512": ["-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-mfma", "-mavx2", "-mf16c"],
    "avx2": ["-mavx2", "-mfma", "-mf16c"],
    "generic": [],
}
COMMON_FLAGS = ["-O3", "-fopenmp", "-std=c++17", "-fno-math-errno", "-Wall", "-Wno-unknown-pragmas",
                # GCC 12 false positive inside its own _mm512_reduce_* intrinsics:
                "-Wno-maybe-uninitialized",
                "-fvisibility=hidden"]


# FASTCNN_SANITIZE=address,undefined: an instrumented build for scripts/sanitize.sh (never the
# shipped one: that script builds into its own folders). -O1 keeps ASan's reports readable.
SANITIZE = os.environ.get("FASTCNN_SANITIZE", "")
SANITIZE_FLAGS = ([f"-fsanitize={SANITIZE}", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer", "-g", "-O1",
                   "-DFASTCNN_SANITIZE_BUILD"]
                  if SANITIZE else [])
# FASTCNN_SANITIZE_ISAS=avx512 (a comma list): instrument only these ISA copies of the kernel files
# (the one the tests run on); the other copies are the shipped build's objects (FASTCNN_PLAIN_OBJECTS,
# default build/objects; compiled there as usual if out of date). Cuts the sanitizer build to a third.
SANITIZE_ISAS = [i for i in os.environ.get("FASTCNN_SANITIZE_ISAS", "").split(",") if i] if SANITIZE else []
PLAIN_OBJECTS = os.environ.get("FASTCNN_PLAIN_OBJECTS", str(ROOT / "build" / "objects"))


def torch_build_flags():
    """(include dirs, compile flags, link flags) for csrc/torchops/, the eager op layer that includes
    torch's headers and links c10 + torch_cpu (with the matching C++ ABI); None without torch, then
    _C is built without it (fastcnn/ops/_eager.py falls back to the Python op layer)."""
    try:
        import torch
        from torch.utils import cpp_extension
    except ImportError:
        print("[fastcnn build] torch not importable: building without the eager op layer (csrc/torchops)")
        return None
    libs = cpp_extension.library_paths()
    return (cpp_extension.include_paths(),
            # C++20 as torch's own extensions (its headers use C++20 features); last, so it wins.
            [f"-D_GLIBCXX_USE_CXX11_ABI={int(torch._C._GLIBCXX_USE_CXX11_ABI)}", "-std=c++20"],
            [f"-L{d}" for d in libs] + [f"-Wl,-rpath,{d}" for d in libs] + ["-lc10", "-ltorch_cpu"])


TORCH = torch_build_flags()


def rel(paths):
    return sorted(str(p.relative_to(ROOT)) for p in paths)


def newest_header_mtime():
    headers = list(CSRC.rglob("*.h")) + list(SHARED_HEADERS.rglob("*.cuh"))
    return max((h.stat().st_mtime for h in headers), default=0.0)


def dependencies(obj):
    """The files an object was compiled from, read from the .d file -MMD wrote beside it (None if
    there is none, e.g. from an older build: then every header counts)."""
    try:
        with open(obj[: -len(".o")] + ".d") as f:
            text = f.read().replace("\\\n", " ")
    except OSError:
        return None
    return text.split(":", 1)[1].split() if ":" in text else None


def up_to_date(obj, src, any_header_mtime):
    if not os.path.exists(obj):
        return False
    deps = dependencies(obj)
    try:
        newest = max(os.path.getmtime(d) for d in deps) if deps else max(os.path.getmtime(src), any_header_mtime)
    except OSError:  # a listed header was removed or renamed
        return False
    return os.path.getmtime(obj) >= newest


class IsaBuildExt(build_ext):
    """build_ext that compiles kernel files once per ISA, incrementally and in parallel.

    Objects live in a persistent folder (build/objects, or FASTCNN_BUILD_TEMP), not in the fresh
    temporary folder pip gives an editable install each time: a second `pip install -e .` then
    recompiles only what changed."""

    def finalize_options(self):
        super().finalize_options()
        self.build_temp = os.environ.get("FASTCNN_BUILD_TEMP", str(ROOT / "build" / "objects"))

    def build_extension(self, ext):
        compiler = self.compiler
        include_dirs = list(ext.include_dirs)
        header_mtime = newest_header_mtime()
        # Link order matters: a template instantiated by several objects (std::vector<float>'s
        # members, say) is a weak symbol, and the linker keeps the first copy it meets for all of
        # them. Host objects and the baseline ("generic") copies come first, so the copy every ISA
        # shares is baseline code; with the AVX-512 copy first, an AVX2 machine died of SIGILL in
        # a std::vector member. tests/backends/cpu/test_build_isa.py checks that nothing outside the ISA
        # namespaces holds AVX instructions.
        jobs = []  # (source, object_dir, macros, extra flags, sanitizer flags, extra include dirs)
        for src in ext.sources:
            jobs.append((src, os.path.join(self.build_temp, "host"), [], [], SANITIZE_FLAGS, []))
        # torch's headers only on these files' include path: torch bundles its own pybind11, which
        # must not shadow the one the bindings compile against.
        link_flags = []
        if TORCH is not None:
            torch_includes, torch_flags, link_flags = TORCH
            for src in rel((CSRC / "torchops").glob("*.cpp")):
                jobs.append((src, os.path.join(self.build_temp, "host"), [], torch_flags, SANITIZE_FLAGS, torch_includes))
        for isa in sorted(ISA_FLAGS, key=lambda name: name != "generic"):
            plain = SANITIZE_ISAS and isa not in SANITIZE_ISAS
            out_dir = os.path.join(PLAIN_OBJECTS if plain else self.build_temp, "isa_" + isa)
            for src in rel((CSRC / "kernels").glob("*.cpp")):
                jobs.append((src, out_dir, [("FASTCNN_ISA", isa)], ISA_FLAGS[isa], [] if plain else SANITIZE_FLAGS, []))

        def compile_one(job):
            src, out_dir, macros, flags, sanitize_flags, more_includes = job
            obj = compiler.object_filenames([src], output_dir=out_dir)[0]
            if self.force or not up_to_date(obj, src, header_mtime):
                print(f"[fastcnn build] compiling {src} ({os.path.basename(out_dir)})", flush=True)
                compiler.compile([src], output_dir=out_dir, macros=macros, include_dirs=include_dirs + more_includes,
                                 extra_postargs=COMMON_FLAGS + list(ext.extra_compile_args) + flags + ["-MMD"]
                                 + sanitize_flags)
            return obj

        n_jobs = int(os.environ.get("FASTCNN_BUILD_JOBS", os.cpu_count() or 1))
        with ThreadPoolExecutor(max_workers=max(1, n_jobs)) as pool:
            objects = list(pool.map(compile_one, jobs))

        ext_path = self.get_ext_fullpath(ext.name)
        os.makedirs(os.path.dirname(ext_path), exist_ok=True)
        newest_obj = max(os.path.getmtime(o) for o in objects)
        order_file = os.path.join(self.build_temp, "link_order.txt")  # a new order must relink too
        order = "\n".join(objects)
        same_order = False
        if os.path.exists(order_file):
            with open(order_file) as f:
                same_order = f.read() == order
        if self.force or not same_order or not os.path.exists(ext_path) or os.path.getmtime(ext_path) < newest_obj:
            if os.path.exists(ext_path):
                os.remove(ext_path)  # else the compiler's own up-to-date check may skip the link
            compiler.link_shared_object(objects, ext_path, libraries=self.get_libraries(ext),
                                        extra_postargs=["-fopenmp"] + list(ext.extra_link_args) + link_flags + SANITIZE_FLAGS[:1],
                                        target_lang="c++")
            with open(order_file, "w") as f:
                f.write(order)
        self.build_cuda_fatbins()

    def build_cuda_fatbins(self):
        """The .cu kernels compiled ahead of time (sm_80, sm_90 + compute_90 PTX) when nvcc is here, so
        the cuda backend loads them instead of compiling at first use (fastcnn/backends/cuda/
        _binaries.py; without them, NVRTC output is cached on disk). FASTCNN_NO_FATBIN=1 skips; a
        failure only warns (NVRTC remains)."""
        import importlib.util
        import shutil

        nvcc = shutil.which("nvcc")
        if not nvcc or os.environ.get("FASTCNN_NO_FATBIN", "0") not in ("", "0"):
            return
        spec = importlib.util.spec_from_file_location("fastcnn_cuda_binaries",
                                                      ROOT / "fastcnn" / "backends" / "cuda" / "_binaries.py")
        binaries = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(binaries)
        try:
            built = binaries.build_fatbins(nvcc, jobs=int(os.environ.get("FASTCNN_BUILD_JOBS", os.cpu_count() or 1)))
        except Exception as e:  # noqa: BLE001 - the NVRTC path still works
            print(f"[fastcnn build] warning: CUDA fatbins not built ({e}); kernels compile at first use", flush=True)
            return
        print(f"[fastcnn build] CUDA fatbins built: {built or 'all current'}", flush=True)
        if not self.inplace:  # package data was copied before build_ext ran
            target = Path(self.build_lib) / "fastcnn" / "kernels" / "cuda"
            target.mkdir(parents=True, exist_ok=True)
            for path in binaries.CUDA_DIR.glob("*.fatbin*"):
                shutil.copy2(path, target / path.name)


ext = Pybind11Extension(
    "fastcnn._C",
    sources=rel(list((CSRC / "host").glob("*.cpp")) + list((CSRC / "common").glob("*.cpp")) + [CSRC / "bindings.cpp"]),
    include_dirs=[str(CSRC), str(SHARED_HEADERS)],
    cxx_std=17,
)

setup(ext_modules=[ext], cmdclass={"build_ext": IsaBuildExt})

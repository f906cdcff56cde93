"""The extension's ISA isolation: every AVX2 / AVX-512 instruction must sit inside a function of
the matching kernel copy (namespaces fastcnn::avx2, fastcnn::avx512 and their isa_ inline
namespaces). Code shared by all copies, such as the out-of-line members of std::vector that the
linker keeps once for every object (setup.py links the baseline copies first for this), must be
baseline x86-64, or the portable fallback would die of SIGILL on an older CPU (and the AVX2 path on
this one, had the AVX-512 copy won)."""
import re
import shutil
import subprocess

import pytest

from fastcnn import _C

ISA_NAMESPACE = re.compile(r"fastcnn::(isa_)?(avx2|avx512)::")
VEX_OR_EVEX = re.compile(r"^\s*[0-9a-f]+:\s+v[a-z0-9]+\s")  # every AVX-encoded mnemonic starts with v
FUNCTION = re.compile(r"^[0-9a-f]+ <(.*)>:$")
# GCC's specialised clones (.constprop, .isra, ...) are local to the object that made them, so an
# AVX2 object's clone of a std function serves that object only.
LOCAL_CLONE = re.compile(r"\[clone \.")


def functions_with_avx_outside_isa_copies(disassembly: str):
    found, current = {}, None
    for line in disassembly.splitlines():
        header = FUNCTION.match(line)
        if header:
            current = header.group(1)
        elif current and not ISA_NAMESPACE.search(current) and not LOCAL_CLONE.search(current) \
                and VEX_OR_EVEX.match(line):
            found.setdefault(current, line.strip())
    return found


def test_the_checker_sees_avx_only_outside_isa_copies():
    sample = "\n".join([
        "0000000000001000 <fastcnn::avx2::(anonymous namespace)::relu(float*)>:",
        "    1000:\tvmaxps %ymm1,%ymm0,%ymm0",
        "0000000000002000 <std::vector<float, std::allocator<float> >::push_back(float const&)>:",
        "    2000:\tmovss (%rsi),%xmm0",
        "    2004:\tvmovss (%rsi),%xmm0",
        "0000000000003000 <std::vector<float, std::allocator<float> >::vector(unsigned long) [clone .constprop.0]>:",
        "    3000:\tvpxor %xmm0,%xmm0,%xmm0",
    ])
    assert list(functions_with_avx_outside_isa_copies(sample)) == [
        "std::vector<float, std::allocator<float> >::push_back(float const&)"]


@pytest.mark.skipif(shutil.which("objdump") is None, reason="objdump (binutils) not installed")
def test_no_avx_instruction_outside_the_isa_copies():
    disassembly = subprocess.run(["objdump", "-d", "--no-show-raw-insn", "-C", _C.__file__], capture_output=True,
                                 text=True, check=True).stdout
    assert "fastcnn::avx2::" in disassembly  # the demangled ISA copies are there to be told apart
    leaks = functions_with_avx_outside_isa_copies(disassembly)
    assert not leaks, "AVX code shared outside the ISA copies: " + "; ".join(
        f"{name[:120]} ({insn})" for name, insn in list(leaks.items())[:5])

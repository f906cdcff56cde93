// The ISA inline namespace for code compiled by the C++ extension (csrc/) as well: no includes, so
// NVRTC, nvcc and the host compiler all read it, and csrc/common/isa.h can include it (kernels/shared
// is on the extension's include path) instead of keeping its own copy of these lines.
//
// Everything inline or templated that a kernel file includes (SIMD types, activation math, shared
// coordinate math) sits in an inline namespace named after the ISA copy being compiled: the three
// copies then have different mangled names, so the linker cannot fold, say, the AVX-512 copy of
// an inline function into the AVX2 kernels (the one-definition rule across ISA copies). Source
// code still writes fastcnn::simd::Vec, fastcnn::act::forward, ...
#pragma once

#ifndef FASTCNN_ISA_INLINE_BEGIN
#define FASTCNN_ISA_CAT2(a, b) a##b
#define FASTCNN_ISA_CAT(a, b) FASTCNN_ISA_CAT2(a, b)
#ifdef FASTCNN_ISA
#define FASTCNN_ISA_INLINE_BEGIN inline namespace FASTCNN_ISA_CAT(isa_, FASTCNN_ISA) {
#else
#define FASTCNN_ISA_INLINE_BEGIN inline namespace isa_host {
#endif
#define FASTCNN_ISA_INLINE_END }
#endif

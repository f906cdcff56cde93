// A family's kernel table for each floating dtype, picked by the element type T (the per-ISA
// tables that FASTCNN_ISA_TABLE returns hold one of these).
#pragma once

namespace fastcnn {

template <template <class> class Table>
struct DtypeTables {
  Table<float> f32;
  Table<double> f64;
  template <class T>
  const Table<T>& get() const {
    if constexpr (sizeof(T) == 4) return f32; else return f64;
  }
};

}  // namespace fastcnn

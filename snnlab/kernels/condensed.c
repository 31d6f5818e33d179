#include <stdint.h>
#if defined(__AVX2__) || defined(__AVX512F__)
#include <immintrin.h>
#endif
/* Condensed linear: y[b, r] = bias[r] + sum_j vals[r, j] * x[b, idx[r, j]].
   B == 1: x [n_in]; one row per iteration, SIMD gathers over j.
   B >  1: xT [n_in, ld] (x transposed, zero-padded to ld columns); vector accumulators over
   the batch, 4 (or 2) independent chains over j; y [B, n_rows]. Rows split over OpenMP threads. */
typedef float v2 __attribute__((vector_size(8), aligned(4)));
typedef float v4 __attribute__((vector_size(16), aligned(4)));
typedef float v8 __attribute__((vector_size(32), aligned(4)));
typedef float v16 __attribute__((vector_size(64), aligned(4)));

/* Batch-1 row dot products: acc = sum_j vr[j] * x[ir[j]].  Explicit AVX-512 / AVX2 gathers with
   two independent accumulators (2x faster than what the compiler makes of the plain loop);
   portable scalar loop with four accumulators otherwise. */
static inline float row_dot_i32(const float* restrict x, const int32_t* restrict ir,
                                const float* restrict vr, int64_t k) {
  int64_t j = 0; float s = 0.0f;
#if defined(__AVX512F__)
  __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
  for (; j + 32 <= k; j += 32) {
    a0 = _mm512_fmadd_ps(_mm512_loadu_ps(vr + j), _mm512_i32gather_ps(_mm512_loadu_si512(ir + j), x, 4), a0);
    a1 = _mm512_fmadd_ps(_mm512_loadu_ps(vr + j + 16), _mm512_i32gather_ps(_mm512_loadu_si512(ir + j + 16), x, 4), a1);
  }
  for (; j + 16 <= k; j += 16)
    a0 = _mm512_fmadd_ps(_mm512_loadu_ps(vr + j), _mm512_i32gather_ps(_mm512_loadu_si512(ir + j), x, 4), a0);
  s = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
#elif defined(__AVX2__) && defined(__FMA__)
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
  for (; j + 16 <= k; j += 16) {
    a0 = _mm256_fmadd_ps(_mm256_loadu_ps(vr + j), _mm256_i32gather_ps(x, _mm256_loadu_si256((const __m256i*)(ir + j)), 4), a0);
    a1 = _mm256_fmadd_ps(_mm256_loadu_ps(vr + j + 8), _mm256_i32gather_ps(x, _mm256_loadu_si256((const __m256i*)(ir + j + 8)), 4), a1);
  }
  float buf[8]; _mm256_storeu_ps(buf, _mm256_add_ps(a0, a1));
  s = ((buf[0] + buf[1]) + (buf[2] + buf[3])) + ((buf[4] + buf[5]) + (buf[6] + buf[7]));
#else
  float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
  for (; j + 4 <= k; j += 4) {
    s0 += vr[j] * x[ir[j]]; s1 += vr[j + 1] * x[ir[j + 1]];
    s2 += vr[j + 2] * x[ir[j + 2]]; s3 += vr[j + 3] * x[ir[j + 3]];
  }
  s = (s0 + s1) + (s2 + s3);
#endif
  for (; j < k; ++j) s += vr[j] * x[ir[j]];
  return s;
}

static inline float row_dot_i64(const float* restrict x, const int64_t* restrict ir,
                                const float* restrict vr, int64_t k) {
  int64_t j = 0; float s = 0.0f;
#if defined(__AVX512F__)
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
  for (; j + 16 <= k; j += 16) {
    a0 = _mm256_fmadd_ps(_mm256_loadu_ps(vr + j), _mm512_i64gather_ps(_mm512_loadu_si512(ir + j), x, 4), a0);
    a1 = _mm256_fmadd_ps(_mm256_loadu_ps(vr + j + 8), _mm512_i64gather_ps(_mm512_loadu_si512(ir + j + 8), x, 4), a1);
  }
  float buf[8]; _mm256_storeu_ps(buf, _mm256_add_ps(a0, a1));
  s = ((buf[0] + buf[1]) + (buf[2] + buf[3])) + ((buf[4] + buf[5]) + (buf[6] + buf[7]));
#elif defined(__AVX2__) && defined(__FMA__)
  __m128 a0 = _mm_setzero_ps(), a1 = _mm_setzero_ps();
  for (; j + 8 <= k; j += 8) {
    a0 = _mm_fmadd_ps(_mm_loadu_ps(vr + j), _mm256_i64gather_ps(x, _mm256_loadu_si256((const __m256i*)(ir + j)), 4), a0);
    a1 = _mm_fmadd_ps(_mm_loadu_ps(vr + j + 4), _mm256_i64gather_ps(x, _mm256_loadu_si256((const __m256i*)(ir + j + 4)), 4), a1);
  }
  float buf[4]; _mm_storeu_ps(buf, _mm_add_ps(a0, a1));
  s = (buf[0] + buf[1]) + (buf[2] + buf[3]);
#else
  float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
  for (; j + 4 <= k; j += 4) {
    s0 += vr[j] * x[ir[j]]; s1 += vr[j + 1] * x[ir[j + 1]];
    s2 += vr[j + 2] * x[ir[j + 2]]; s3 += vr[j + 3] * x[ir[j + 3]];
  }
  s = (s0 + s1) + (s2 + s3);
#endif
  for (; j < k; ++j) s += vr[j] * x[ir[j]];
  return s;
}

#define DEF_B1(NAME, IT, DOT) \
void NAME(const float* restrict x, const IT* restrict idx, const float* restrict vals, \
          const float* restrict bias, float* restrict y, int64_t n_rows, int64_t k, int nthreads) { \
  if (nthreads <= 1) { \
    for (int64_t r = 0; r < n_rows; ++r) \
      y[r] = DOT(x, idx + r * k, vals + r * k, k) + (bias ? bias[r] : 0.0f); \
    return; \
  } \
  _Pragma("omp parallel for num_threads(nthreads) schedule(static)") \
  for (int64_t r = 0; r < n_rows; ++r) \
    y[r] = DOT(x, idx + r * k, vals + r * k, k) + (bias ? bias[r] : 0.0f); \
}

#define DEF_V1(NAME, IT, VT, W) \
static inline void NAME(const float* restrict xT, int64_t ld, int64_t c0, const IT* restrict ir, \
    const float* restrict vr, int64_t k, float* restrict acc) { \
  VT a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0}; \
  const float* base = xT + c0; int64_t j = 0; \
  for (; j + 4 <= k; j += 4) { \
    a0 += vr[j] * *(const VT*)(base + (int64_t)ir[j] * ld); \
    a1 += vr[j + 1] * *(const VT*)(base + (int64_t)ir[j + 1] * ld); \
    a2 += vr[j + 2] * *(const VT*)(base + (int64_t)ir[j + 2] * ld); \
    a3 += vr[j + 3] * *(const VT*)(base + (int64_t)ir[j + 3] * ld); \
  } \
  for (; j < k; ++j) a0 += vr[j] * *(const VT*)(base + (int64_t)ir[j] * ld); \
  a0 = (a0 + a1) + (a2 + a3); \
  for (int b = 0; b < W; ++b) acc[b] = a0[b]; \
}

#define DEF_VN(NAME, IT, NV) \
static inline void NAME(const float* restrict xT, int64_t ld, int64_t c0, const IT* restrict ir, \
    const float* restrict vr, int64_t k, float* restrict acc) { \
  v16 a[NV], b[NV]; \
  for (int q = 0; q < NV; ++q) { a[q] = (v16){0}; b[q] = (v16){0}; } \
  const float* base = xT + c0; int64_t j = 0; \
  for (; j + 2 <= k; j += 2) { \
    const float w0 = vr[j], w1 = vr[j + 1]; \
    const float* p0 = base + (int64_t)ir[j] * ld; const float* p1 = base + (int64_t)ir[j + 1] * ld; \
    for (int q = 0; q < NV; ++q) { a[q] += w0 * *(const v16*)(p0 + 16 * q); b[q] += w1 * *(const v16*)(p1 + 16 * q); } \
  } \
  for (; j < k; ++j) { const float w = vr[j]; const float* p = base + (int64_t)ir[j] * ld; \
    for (int q = 0; q < NV; ++q) a[q] += w * *(const v16*)(p + 16 * q); } \
  for (int q = 0; q < NV; ++q) { a[q] += b[q]; for (int c = 0; c < 16; ++c) acc[16 * q + c] = a[q][c]; } \
}

#define DEF_BT(NAME, IT) \
DEF_V1(NAME##_w2, IT, v2, 2) DEF_V1(NAME##_w4, IT, v4, 4) DEF_V1(NAME##_w8, IT, v8, 8) \
DEF_V1(NAME##_w16, IT, v16, 16) DEF_VN(NAME##_w32, IT, 2) DEF_VN(NAME##_w64, IT, 4) \
void NAME(const float* restrict xT, int64_t ld, const IT* restrict idx, const float* restrict vals, \
          const float* restrict bias, float* restrict y, int64_t n_rows, int64_t k, int64_t B, int nthreads) { \
  _Pragma("omp parallel for num_threads(nthreads) schedule(static) if(nthreads > 1)") \
  for (int64_t r = 0; r < n_rows; ++r) { \
    const IT* ir = idx + r * k; const float* vr = vals + r * k; \
    const float b0 = bias ? bias[r] : 0.0f; \
    float acc[64]; \
    int64_t c0 = 0; \
    while (c0 < B) { \
      int64_t rem = ld - c0, w; \
      if (rem >= 64) { w = 64; NAME##_w64(xT, ld, c0, ir, vr, k, acc); } \
      else if (rem >= 32) { w = 32; NAME##_w32(xT, ld, c0, ir, vr, k, acc); } \
      else if (rem >= 16) { w = 16; NAME##_w16(xT, ld, c0, ir, vr, k, acc); } \
      else if (rem >= 8) { w = 8; NAME##_w8(xT, ld, c0, ir, vr, k, acc); } \
      else if (rem >= 4) { w = 4; NAME##_w4(xT, ld, c0, ir, vr, k, acc); } \
      else { w = 2; NAME##_w2(xT, ld, c0, ir, vr, k, acc); } \
      int64_t nb = B - c0 < w ? B - c0 : w; \
      for (int64_t b = 0; b < nb; ++b) y[(c0 + b) * n_rows + r] = acc[b] + b0; \
      c0 += w; \
    } \
  } \
}

DEF_B1(snnlab_condensed_b1_i64, int64_t, row_dot_i64)
DEF_B1(snnlab_condensed_b1_i32, int32_t, row_dot_i32)
DEF_BT(snnlab_condensed_bt_i64, int64_t)
DEF_BT(snnlab_condensed_bt_i32, int32_t)

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
/* Sparse spiking gradient descent (Perez-Nieves & Goodman 2021), CPU kernels.
   Rows are time-major, r = t*B + b. V, S, gS: [R, N_out]; x and the request mask are bit-packed
   [R, NB] (bit k of byte q = column 8q + k). The active set is CSR by output neuron j: offsets[N_out+1],
   rows[nnz] (int32), g[nnz]; within j the entries are ordered by (b, t), whatever the thread count.
   Parallelism: batch blocks in the forward and the input-gradient walk, output-neuron blocks in the
   weight gradient (each thread owns whole rows of dW^T: no atomics). */

typedef float vf_f32 __attribute__((vector_size(32), aligned(4)));
typedef double vf_f64 __attribute__((vector_size(32), aligned(8)));

static inline int row_any(const uint8_t* row, int64_t nb) {
  for (int64_t q = 0; q < nb; ++q) if (row[q]) return 1;
  return 0;
}

/* Pack a [R, N] 0/1 byte mask (torch.bool) into bits. */
void ssgd_pack_mask(const uint8_t* restrict m, int64_t R, int64_t N, uint8_t* restrict out, int64_t NB,
                    int nthreads) {
  const int64_t full = N / 8;
  _Pragma("omp parallel for num_threads(nthreads) schedule(static) if(nthreads > 1)")
  for (int64_t r = 0; r < R; ++r) {
    const uint8_t* p = m + r * N; uint8_t* o = out + r * NB;
    for (int64_t q = 0; q < full; ++q, p += 8) {  /* 8 bytes of 0/1 -> 8 bits, byte k to bit k */
      uint64_t u; memcpy(&u, p, 8);
      u = (u | (u >> 1) | (u >> 2) | (u >> 3) | (u >> 4) | (u >> 5) | (u >> 6) | (u >> 7)) & 0x0101010101010101ULL;
      o[q] = (uint8_t)((u * 0x0102040810204080ULL) >> 56);
    }
    if (full < NB) { uint8_t byte = 0; for (int64_t k = 0; k < N - full * 8; ++k) byte |= (uint8_t)((p[k] != 0) << k); o[full] = byte; }
  }
}

#define DEF_KERNELS(SUF, F)                                                                              \
/* Pack binary x into bits. Returns the number of entries neither 0 nor 1; *ones gets the spike count. */ \
int64_t ssgd_pack_bits_##SUF(const F* restrict x, int64_t R, int64_t N, uint8_t* restrict out,         \
                             int64_t NB, int64_t* ones, int nthreads) {                                \
  int64_t bad = 0, cnt = 0; const int64_t full = N / 8;                                                \
  _Pragma("omp parallel for num_threads(nthreads) schedule(static) reduction(+:bad,cnt) if(nthreads > 1)") \
  for (int64_t r = 0; r < R; ++r) {                                                                    \
    const F* p = x + r * N; uint8_t* o = out + r * NB;                                                 \
    for (int64_t q = 0; q < full; ++q, p += 8) {                                                       \
      uint8_t byte = 0;                                                                                \
      for (int k = 0; k < 8; ++k) {                                                                    \
        const int one = p[k] == (F)1; bad += (p[k] != (F)0) & !one; cnt += one; byte |= (uint8_t)(one << k); \
      }                                                                                                \
      o[q] = byte;                                                                                     \
    }                                                                                                  \
    if (full < NB) {                                                                                   \
      uint8_t byte = 0;                                                                                \
      for (int k = 0; k < (int)(N - full * 8); ++k) {                                                  \
        const int one = p[k] == (F)1; bad += (p[k] != (F)0) & !one; cnt += one; byte |= (uint8_t)(one << k); \
      }                                                                                                \
      o[full] = byte;                                                                                  \
    }                                                                                                  \
  }                                                                                                    \
  *ones = cnt; return bad;                                                                             \
}                                                                                                      \
                                                                                                       \
/* Forward: V[t] = alpha V[t-1] + I[t] - v_th S[t-1], S[t] = V[t] > v_th, with I[t] either given       \
   (I != NULL, [R, N]) or summed from the weight rows of the spiking inputs (xbits, W [N_in, N]).      \
   Thread p (of P) takes batch rows [B p/P, B (p+1)/P) and counts its active entries |V - v_th| < b_th \
   per output neuron into counts[p, N]. */                                                             \
void ssgd_forward_##SUF(const F* restrict I, const uint8_t* restrict xbits, const F* restrict W,         \
                        int64_t T, int64_t B, int64_t N_in, int64_t NB, int64_t N, F alpha, F v_th,    \
                        F b_th, F* restrict V, F* restrict S, int64_t* restrict counts, int P) {       \
  _Pragma("omp parallel for num_threads(P) schedule(static) if(P > 1)")                                \
  for (int p = 0; p < P; ++p) {                                                                        \
    int64_t* cp = counts + (int64_t)p * N;                                                             \
    F* v = (F*)calloc((size_t)(2 * N), sizeof(F)); F* cur = v + N;                                      \
    for (int64_t b = B * p / P; b < B * (p + 1) / P; ++b) {                                            \
      for (int64_t j = 0; j < N; ++j) v[j] = 0;                                                        \
      const F* s_prev = 0;                                                                             \
      for (int64_t t = 0; t < T; ++t) {                                                                \
        const int64_t r = t * B + b; F* vr = V + r * N; F* sr = S + r * N;                             \
        const F* in;                                                                                   \
        if (I) in = I + r * N;                                                                         \
        else {                                                                                         \
          for (int64_t j = 0; j < N; ++j) cur[j] = 0;                                                  \
          const uint8_t* xr = xbits + r * NB;                                                          \
          for (int64_t q = 0; q < NB; ++q) { unsigned byte = xr[q];                                    \
            while (byte) { const int k = __builtin_ctz(byte); byte &= byte - 1;                        \
              const F* restrict wi = W + (q * 8 + k) * N;                                              \
              for (int64_t j = 0; j < N; ++j) cur[j] += wi[j]; } }                                     \
          in = cur;                                                                                    \
        }                                                                                              \
        for (int64_t j = 0; j < N; ++j) {                                                              \
          const F u = alpha * v[j] + in[j] - (s_prev ? v_th * s_prev[j] : (F)0);                       \
          const F sp = u > v_th ? (F)1 : (F)0; const F d = u - v_th;                                   \
          v[j] = u; vr[j] = u; sr[j] = sp; cp[j] += (d < b_th) & (d > -b_th);                          \
        }                                                                                              \
        s_prev = sr;                                                                                   \
      }                                                                                                \
    }                                                                                                  \
    free(v);                                                                                           \
  }                                                                                                    \
}                                                                                                      \
                                                                                                       \
/* Fill the CSR-by-j active list from V; pos[p, j] is thread p's start offset inside j's segment.     \
   g = 1/(beta |V - v_th| + 1)^2. Same batch partition as the forward, so entries come out by (b, t). */ \
void ssgd_active_fill_##SUF(const F* restrict V, int64_t T, int64_t B, int64_t N, F v_th, F b_th,      \
                            F beta, int64_t* restrict pos, int32_t* restrict rows, F* restrict g, int P) { \
  _Pragma("omp parallel for num_threads(P) schedule(static) if(P > 1)")                                \
  for (int p = 0; p < P; ++p) {                                                                        \
    int64_t* pp = pos + (int64_t)p * N;                                                                \
    for (int64_t b = B * p / P; b < B * (p + 1) / P; ++b)                                              \
      for (int64_t t = 0; t < T; ++t) {                                                                \
        const int64_t r = t * B + b; const F* vr = V + r * N;                                          \
        for (int64_t j = 0; j < N; ++j) {                                                              \
          const F d = vr[j] - v_th;                                                                    \
          if (d < b_th && d > -b_th) {                                                                 \
            const F a = beta * (d < 0 ? -d : d) + (F)1; const int64_t q = pp[j]++;                     \
            rows[q] = (int32_t)r; g[q] = (F)1 / (a * a);                                               \
          }                                                                                            \
        }                                                                                              \
      }                                                                                                \
  }                                                                                                    \
}                                                                                                      \
                                                                                                       \
/* The sparse backward. c = gS * g on active entries only, bucketed by row (counting sort).            \
   Weight gradient (dWT != NULL, [N_out, N_in]): thread p owns output neurons [j0, j1) (balanced by    \
   nnz); per batch row it recomputes the input trace tr = alpha tr + x[t] (N_in values, in cache) and  \
   adds c * tr to dWT[j] for each active entry (t, b, j) of its neurons.                                \
   Input gradient: per batch row, walk t downwards through the steps with an active output or a        \
   requested input (Proposition 1: between them e only decays, by alpha^n; Appendix C), and write      \
   dx[t, b, i] = W[i, :] . e for each requested i (reqbits). With reqbits NULL all inputs are          \
   requested and e is written to E [R, N_out] for one GEMM by the caller. dx / E need no initialisation: \
   every row is written (zeros where nothing is requested or e is still zero). Returns 0, or 1 when   \
   scratch memory could not be allocated. */                                                           \
int ssgd_backward_##SUF(const F* restrict gS, const F* restrict W, const uint8_t* restrict xbits,      \
                        int64_t T, int64_t B, int64_t N_in, int64_t NB, int64_t N_out,                 \
                        const int64_t* restrict offsets, const int32_t* restrict rows,                 \
                        const F* restrict g, const uint8_t* restrict reqbits, F alpha,                 \
                        F* restrict dWT, F* restrict dx, F* restrict E, int nthreads) {                \
  const int64_t R = T * B, nnz = offsets[N_out];                                                       \
  int64_t* cnt = (int64_t*)calloc((size_t)R + 1, sizeof(int64_t));                                     \
  int64_t* fill = (int64_t*)malloc(sizeof(int64_t) * (size_t)(R > 0 ? R : 1));                         \
  int32_t* bj = (int32_t*)malloc(sizeof(int32_t) * (size_t)(nnz > 0 ? nnz : 1));                       \
  F* bc = (F*)malloc(sizeof(F) * (size_t)(nnz > 0 ? nnz : 1));                                         \
  F* pw = (F*)malloc(sizeof(F) * (size_t)(T + 1));                                                     \
  int err = !cnt || !fill || !bj || !bc || !pw;                                                        \
  if (err) goto done_##SUF;                                                                            \
  pw[0] = 1; for (int64_t n = 1; n <= T; ++n) pw[n] = pw[n - 1] * alpha;                               \
  for (int64_t e = 0; e < nnz; ++e) cnt[rows[e] + 1]++;                                                \
  for (int64_t r = 0; r < R; ++r) cnt[r + 1] += cnt[r];                                                \
  memcpy(fill, cnt, sizeof(int64_t) * (size_t)R);                                                      \
  for (int64_t j = 0; j < N_out; ++j)                                                                  \
    for (int64_t e = offsets[j]; e < offsets[j + 1]; ++e) {                                            \
      const int64_t r = rows[e]; const int64_t q = fill[r]++;                                          \
      bj[q] = (int32_t)j; bc[q] = gS[r * N_out + j] * g[e];                                            \
    }                                                                                                  \
  if (dWT) {                                                                                           \
    _Pragma("omp parallel num_threads(nthreads) if(nthreads > 1)")                                     \
    {                                                                                                  \
      const int np = omp_get_num_threads_##SUF(), me = omp_get_thread_num_##SUF();                    \
      /* balanced split of output neurons by active count */                                           \
      int64_t j0 = 0, j1 = N_out;                                                                      \
      { const int64_t lo = nnz * me / np, hi = nnz * (me + 1) / np; j0 = N_out; j1 = N_out;            \
        for (int64_t j = 0; j < N_out; ++j) if (offsets[j + 1] > lo) { j0 = j; break; }                \
        for (int64_t j = 0; j < N_out; ++j) if (offsets[j + 1] > hi) { j1 = j; break; }                \
        if (me == 0) j0 = 0;                                                                           \
        if (me == np - 1) j1 = N_out; }                                                                \
      if (j1 > j0) memset(dWT + j0 * N_in, 0, sizeof(F) * (size_t)((j1 - j0) * N_in));                  \
      F* tr = (F*)malloc(sizeof(F) * (size_t)(N_in > 0 ? N_in : 1));                                   \
      if (!tr) err = 1;                                                                                \
      else if (j1 > j0)                                                                                \
        for (int64_t b = 0; b < B; ++b) {                                                              \
          for (int64_t i = 0; i < N_in; ++i) tr[i] = 0;                                                \
          for (int64_t t = 0; t < T; ++t) {                                                            \
            const int64_t r = t * B + b; const uint8_t* xr = xbits + r * NB;                           \
            for (int64_t i = 0; i < N_in; ++i) tr[i] *= alpha;                                         \
            for (int64_t q = 0; q < NB; ++q) { unsigned byte = xr[q];                                  \
              while (byte) { const int k = __builtin_ctz(byte); byte &= byte - 1; tr[q * 8 + k] += (F)1; } } \
            for (int64_t q = cnt[r]; q < cnt[r + 1]; ++q) {                                            \
              const int64_t j = bj[q]; if (j < j0 || j >= j1) continue;                                \
              const F c = bc[q]; F* restrict o = dWT + j * N_in;                                       \
              for (int64_t i = 0; i < N_in; ++i) o[i] += c * tr[i];                                    \
            }                                                                                          \
          }                                                                                            \
        }                                                                                              \
      free(tr);                                                                                        \
    }                                                                                                  \
  }                                                                                                    \
  if (dx || E) {                                                                                       \
    _Pragma("omp parallel for num_threads(nthreads) schedule(static) if(nthreads > 1)")                \
    for (int64_t b = 0; b < B; ++b) {                                                                  \
      F* ev = (F*)calloc((size_t)(N_out > 0 ? N_out : 1), sizeof(F));                                  \
      if (!ev) { err = 1; continue; }                                                                  \
      int64_t t_last = -1; int live = 0;                                                               \
      for (int64_t t = T - 1; t >= 0; --t) {                                                           \
        const int64_t r = t * B + b;                                                                   \
        const int has_a = cnt[r + 1] > cnt[r];                                                         \
        const uint8_t* rq = reqbits ? reqbits + r * NB : 0;                                            \
        const int has_r = reqbits ? row_any(rq, NB) : 1;                                               \
        F* out = E ? E + r * N_out : dx + r * N_in;                                                    \
        const int64_t width = E ? N_out : N_in;                                                        \
        if (!has_a && !(has_r && live)) { memset(out, 0, sizeof(F) * (size_t)width); continue; }       \
        if (live && t_last > t) { const F a = pw[t_last - t]; for (int64_t j = 0; j < N_out; ++j) ev[j] *= a; } \
        t_last = t;                                                                                    \
        for (int64_t q = cnt[r]; q < cnt[r + 1]; ++q) ev[bj[q]] += bc[q];                              \
        live |= has_a;                                                                                 \
        if (E) { memcpy(out, ev, sizeof(F) * (size_t)N_out); continue; }                               \
        memset(out, 0, sizeof(F) * (size_t)N_in);                                                      \
        if (!has_r) continue;                                                                          \
        for (int64_t q = 0; q < NB; ++q) {                                                             \
          unsigned byte = rq[q];                                                                       \
          while (byte) {                                                                               \
            const int k = __builtin_ctz(byte); byte &= byte - 1;                                       \
            const int64_t i = q * 8 + k; const F* restrict wi = W + i * N_out;                         \
            const int L = (int)(32 / sizeof(F)); vf_##SUF a0 = {0}, a1 = {0}; int64_t j = 0;              \
            for (; j + 2 * L <= N_out; j += 2 * L) {                                                   \
              a0 += *(const vf_##SUF*)(wi + j) * *(const vf_##SUF*)(ev + j);                           \
              a1 += *(const vf_##SUF*)(wi + j + L) * *(const vf_##SUF*)(ev + j + L); }                 \
            for (; j + L <= N_out; j += L) a0 += *(const vf_##SUF*)(wi + j) * *(const vf_##SUF*)(ev + j); \
            a0 += a1; F s0 = 0;                                                                        \
            for (int l = 0; l < L; ++l) s0 += a0[l];                                                   \
            for (; j < N_out; ++j) s0 += wi[j] * ev[j];                                                \
            out[i] = s0;                                                            \
          }                                                                                            \
        }                                                                                              \
      }                                                                                                \
      free(ev);                                                                                        \
    }                                                                                                  \
  }                                                                                                    \
done_##SUF:                                                                                            \
  free(cnt); free(fill); free(bj); free(bc); free(pw);                                                 \
  return err;                                                                                          \
}

#ifdef _OPENMP
#include <omp.h>
#define omp_get_num_threads_f32 omp_get_num_threads
#define omp_get_thread_num_f32 omp_get_thread_num
#define omp_get_num_threads_f64 omp_get_num_threads
#define omp_get_thread_num_f64 omp_get_thread_num
#else
static inline int omp_get_num_threads_f32(void) { return 1; }
static inline int omp_get_thread_num_f32(void) { return 0; }
static inline int omp_get_num_threads_f64(void) { return 1; }
static inline int omp_get_thread_num_f64(void) { return 0; }
#endif

DEF_KERNELS(f32, float)
DEF_KERNELS(f64, double)

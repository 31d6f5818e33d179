#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
/* Sparse spiking gradient descent (Perez-Nieves & Goodman 2021): forward LIF scan, active-set
   extraction grouped by output neuron, and the sparse backward (weight gradient from active entries
   only, input-spike gradient through the Proposition 1 recurrence, written only where requested).
   Layouts: time-major rows r = t*B + b. I, V, S: [R, N]; x and the request mask are bit-packed
   [R, NB] (bit k of byte q = column 8q + k); active entries are CSR by output neuron j:
   offsets[N_out + 1], rows[nnz] (int32, ascending within j), g[nnz] (surrogate values). */

static inline int bit_at(const uint8_t* row, int64_t i) { return (row[i >> 3] >> (i & 7)) & 1; }

static inline int row_any(const uint8_t* row, int64_t nb) {
  for (int64_t q = 0; q < nb; ++q) if (row[q]) return 1;
  return 0;
}

/* Pack a [R, N] mask (uint8 0/1) into bits. */
void ssgd_pack_mask(const uint8_t* restrict m, int64_t R, int64_t N, uint8_t* restrict out, int64_t NB,
                    int nthreads) {
  _Pragma("omp parallel for num_threads(nthreads) schedule(static) if(nthreads > 1)")
  for (int64_t r = 0; r < R; ++r) {
    const uint8_t* mr = m + r * N; uint8_t* o = out + r * NB;
    for (int64_t q = 0; q < NB; ++q) {
      uint8_t byte = 0; int64_t i0 = q * 8;
      for (int k = 0; k < 8 && i0 + k < N; ++k) byte |= (uint8_t)((mr[i0 + k] != 0) << k);
      o[q] = byte;
    }
  }
}

#define DEF_KERNELS(SUF, F)                                                                              \
/* Pack binary x into bits; returns the number of entries that are neither 0 nor 1 (nothing else is    \
   trusted when it is non-zero). */                                                                    \
int64_t ssgd_pack_bits_##SUF(const F* restrict x, int64_t R, int64_t N, uint8_t* restrict out,         \
                             int64_t NB, int nthreads) {                                               \
  int64_t bad = 0;                                                                                     \
  _Pragma("omp parallel for num_threads(nthreads) schedule(static) reduction(+:bad) if(nthreads > 1)") \
  for (int64_t r = 0; r < R; ++r) {                                                                    \
    const F* xr = x + r * N; uint8_t* o = out + r * NB;                                                \
    for (int64_t q = 0; q < NB; ++q) {                                                                 \
      uint8_t byte = 0; int64_t i0 = q * 8;                                                            \
      for (int k = 0; k < 8 && i0 + k < N; ++k) {                                                      \
        F v = xr[i0 + k];                                                                              \
        bad += (v != (F)0) & (v != (F)1);                                                              \
        byte |= (uint8_t)((v == (F)1) << k);                                                           \
      }                                                                                                \
      o[q] = byte;                                                                                     \
    }                                                                                                  \
  }                                                                                                    \
  return bad;                                                                                          \
}                                                                                                      \
                                                                                                       \
/* V[t] = alpha V[t-1] + I[t] - v_th S[t-1];  S[t] = V[t] > v_th.  Chunks of the B*N columns run in    \
   parallel, each scanning t with its state in a small local buffer. */                                \
void ssgd_forward_##SUF(const F* restrict I, F* restrict V, F* restrict S, int64_t T, int64_t BN,      \
                        F alpha, F v_th, int nthreads) {                                               \
  const int64_t CH = 512; const int64_t nch = (BN + CH - 1) / CH;                                      \
  _Pragma("omp parallel for num_threads(nthreads) schedule(static) if(nthreads > 1)")                  \
  for (int64_t c = 0; c < nch; ++c) {                                                                  \
    const int64_t e0 = c * CH, n = BN - e0 < CH ? BN - e0 : CH;                                        \
    F v[512], s[512];                                                                                  \
    for (int64_t k = 0; k < n; ++k) { v[k] = 0; s[k] = 0; }                                            \
    for (int64_t t = 0; t < T; ++t) {                                                                  \
      const F* it = I + t * BN + e0; F* vt = V + t * BN + e0; F* st = S + t * BN + e0;                 \
      for (int64_t k = 0; k < n; ++k) {                                                                \
        F u = alpha * v[k] + it[k] - v_th * s[k];                                                      \
        F sp = u > v_th ? (F)1 : (F)0;                                                                 \
        v[k] = u; s[k] = sp; vt[k] = u; st[k] = sp;                                                    \
      }                                                                                                \
    }                                                                                                  \
  }                                                                                                    \
}                                                                                                      \
                                                                                                       \
/* Count active entries |V - v_th| < b_th per (row block p, output neuron j): counts[P, N]. */          \
void ssgd_active_count_##SUF(const F* restrict V, int64_t R, int64_t N, F v_th, F b_th,                \
                             int64_t* restrict counts, int P) {                                        \
  _Pragma("omp parallel for num_threads(P) schedule(static) if(P > 1)")                                \
  for (int p = 0; p < P; ++p) {                                                                        \
    int64_t r0 = R * p / P, r1 = R * (p + 1) / P; int64_t* cp = counts + (int64_t)p * N;               \
    for (int64_t r = r0; r < r1; ++r) {                                                                \
      const F* vr = V + r * N;                                                                         \
      for (int64_t j = 0; j < N; ++j) { F d = vr[j] - v_th; cp[j] += (d < b_th) & (d > -b_th); }       \
    }                                                                                                  \
  }                                                                                                    \
}                                                                                                      \
                                                                                                       \
/* Fill the CSR-by-j active list; pos[P, N] holds each block's start offset within j's segment, so     \
   the rows of each j come out ascending whatever P is. g = 1/(beta |V - v_th| + 1)^2. */              \
void ssgd_active_fill_##SUF(const F* restrict V, int64_t R, int64_t N, F v_th, F b_th, F beta,         \
                            int64_t* restrict pos, int32_t* restrict rows, F* restrict g, int P) {     \
  _Pragma("omp parallel for num_threads(P) schedule(static) if(P > 1)")                                \
  for (int p = 0; p < P; ++p) {                                                                        \
    int64_t r0 = R * p / P, r1 = R * (p + 1) / P; int64_t* pp = pos + (int64_t)p * N;                  \
    for (int64_t r = r0; r < r1; ++r) {                                                                \
      const F* vr = V + r * N;                                                                         \
      for (int64_t j = 0; j < N; ++j) {                                                                \
        F d = vr[j] - v_th;                                                                            \
        if (d < b_th && d > -b_th) {                                                                   \
          F a = beta * (d < 0 ? -d : d) + (F)1;                                                        \
          int64_t q = pp[j]++; rows[q] = (int32_t)r; g[q] = (F)1 / (a * a);                            \
        }                                                                                              \
      }                                                                                                \
    }                                                                                                  \
  }                                                                                                    \
}                                                                                                      \
                                                                                                       \
/* Input trace tr[t] = alpha tr[t-1] + x[t] from the packed spikes; batch rows in parallel. */         \
void ssgd_trace_##SUF(const uint8_t* restrict xbits, int64_t T, int64_t B, int64_t N, int64_t NB,      \
                      F alpha, F* restrict tr, int nthreads) {                                         \
  _Pragma("omp parallel for num_threads(nthreads) schedule(static) if(nthreads > 1)")                  \
  for (int64_t b = 0; b < B; ++b) {                                                                    \
    for (int64_t t = 0; t < T; ++t) {                                                                  \
      const int64_t r = t * B + b; const uint8_t* xr = xbits + r * NB; F* o = tr + r * N;              \
      if (t == 0) { for (int64_t i = 0; i < N; ++i) o[i] = (F)bit_at(xr, i); }                         \
      else { const F* prev = tr + (r - B) * N;                                                         \
        for (int64_t i = 0; i < N; ++i) o[i] = alpha * prev[i] + (F)bit_at(xr, i); }                   \
    }                                                                                                  \
  }                                                                                                    \
}                                                                                                      \
                                                                                                       \
/* dW^T[j, :] = sum over j's active entries e of gS[row_e, j] g_e tr[row_e, :]. One output neuron per  \
   task: each thread owns whole rows of dW^T, so no atomics. */                                        \
void ssgd_grad_weight_##SUF(const F* restrict tr, const F* restrict gS, int64_t N_in, int64_t N_out,   \
                            const int64_t* restrict offsets, const int32_t* restrict rows,             \
                            const F* restrict g, F* restrict dWT, int nthreads) {                      \
  _Pragma("omp parallel for num_threads(nthreads) schedule(dynamic, 4) if(nthreads > 1)")              \
  for (int64_t j = 0; j < N_out; ++j) {                                                                \
    F* restrict o = dWT + j * N_in;                                                                    \
    for (int64_t i = 0; i < N_in; ++i) o[i] = 0;                                                       \
    for (int64_t e = offsets[j]; e < offsets[j + 1]; ++e) {                                            \
      const int64_t r = rows[e]; const F c = gS[r * N_out + j] * g[e];                                 \
      if (c == (F)0) continue;                                                                         \
      const F* restrict tri = tr + r * N_in;                                                           \
      for (int64_t i = 0; i < N_in; ++i) o[i] += c * tri[i];                                           \
    }                                                                                                  \
  }                                                                                                    \
}                                                                                                      \
                                                                                                       \
/* Input-spike gradient. e[t, b, :] = c[t, b, :] + alpha e[t+1, b, :], c = gS * g on active entries    \
   only (Proposition 1: between active steps e only decays, by alpha^n). Per batch row b, walk t       \
   downwards visiting only steps with an active output or a requested input (Appendix C), then         \
   dx[t, b, i] = W[i, :] . e[t, b, :] for each requested i (reqbits, [R, NB]). With reqbits NULL every \
   input is requested: e is written to E [R, N_out] instead, for one GEMM by the caller. dx (or E)     \
   must be zero-initialised; unrequested entries stay zero. */                                         \
int ssgd_grad_input_##SUF(const F* restrict gS, const F* restrict W, int64_t T, int64_t B,             \
                          int64_t N_in, int64_t N_out, const int64_t* restrict offsets,                \
                          const int32_t* restrict rows, const F* restrict g,                           \
                          const uint8_t* restrict reqbits, int64_t NB, F alpha, F* restrict dx,        \
                          F* restrict E, int nthreads) {                                               \
  const int64_t R = T * B, nnz = offsets[N_out];                                                       \
  int64_t* cnt = (int64_t*)calloc((size_t)R + 1, sizeof(int64_t));                                     \
  int32_t* bj = (int32_t*)malloc(sizeof(int32_t) * (size_t)(nnz > 0 ? nnz : 1));                       \
  F* bc = (F*)malloc(sizeof(F) * (size_t)(nnz > 0 ? nnz : 1));                                         \
  F* pw = (F*)malloc(sizeof(F) * (size_t)(T + 1));                                                     \
  if (!cnt || !bj || !bc || !pw) { free(cnt); free(bj); free(bc); free(pw); return 1; }                \
  pw[0] = 1; for (int64_t n = 1; n <= T; ++n) pw[n] = pw[n - 1] * alpha;                               \
  /* bucket the active entries by row (counting sort), with c = gS * g */                              \
  for (int64_t e = 0; e < nnz; ++e) cnt[rows[e] + 1]++;                                                \
  for (int64_t r = 0; r < R; ++r) cnt[r + 1] += cnt[r];                                                \
  { int64_t* fill = (int64_t*)malloc(sizeof(int64_t) * (size_t)(R > 0 ? R : 1));                       \
    if (!fill) { free(cnt); free(bj); free(bc); free(pw); return 1; }                                  \
    memcpy(fill, cnt, sizeof(int64_t) * (size_t)R);                                                    \
    for (int64_t j = 0; j < N_out; ++j)                                                                \
      for (int64_t e = offsets[j]; e < offsets[j + 1]; ++e) {                                          \
        const int64_t r = rows[e]; const int64_t q = fill[r]++;                                        \
        bj[q] = (int32_t)j; bc[q] = gS[r * N_out + j] * g[e];                                          \
      }                                                                                                \
    free(fill); }                                                                                      \
  int err = 0;                                                                                         \
  _Pragma("omp parallel for num_threads(nthreads) schedule(dynamic, 1) if(nthreads > 1)")              \
  for (int64_t b = 0; b < B; ++b) {                                                                    \
    F* ev = (F*)calloc((size_t)N_out, sizeof(F));                                                      \
    if (!ev) { err = 1; continue; }                                                                    \
    int64_t t_last = -1; int live = 0;                                                                 \
    for (int64_t t = T - 1; t >= 0; --t) {                                                             \
      const int64_t r = t * B + b;                                                                     \
      const int has_a = cnt[r + 1] > cnt[r];                                                           \
      const uint8_t* rq = reqbits ? reqbits + r * NB : 0;                                              \
      const int has_r = reqbits ? row_any(rq, NB) : 1;                                                 \
      if (!has_a && !(has_r && live)) continue;                                                        \
      if (live && t_last > t) { const F a = pw[t_last - t]; for (int64_t j = 0; j < N_out; ++j) ev[j] *= a; } \
      t_last = t;                                                                                      \
      for (int64_t q = cnt[r]; q < cnt[r + 1]; ++q) ev[bj[q]] += bc[q];                                \
      live |= has_a;                                                                                   \
      if (!has_r || !live) continue;                                                                   \
      if (!reqbits) { memcpy(E + r * N_out, ev, sizeof(F) * (size_t)N_out); continue; }                \
      F* dxr = dx + r * N_in;                                                                          \
      for (int64_t q = 0; q < NB; ++q) {                                                               \
        uint8_t byte = rq[q];                                                                          \
        while (byte) {                                                                                 \
          const int k = __builtin_ctz(byte); byte &= (uint8_t)(byte - 1);                              \
          const int64_t i = q * 8 + k; const F* restrict wi = W + i * N_out;                           \
          F s0 = 0, s1 = 0, s2 = 0, s3 = 0; int64_t j = 0;                                             \
          for (; j + 4 <= N_out; j += 4) {                                                             \
            s0 += wi[j] * ev[j]; s1 += wi[j + 1] * ev[j + 1];                                          \
            s2 += wi[j + 2] * ev[j + 2]; s3 += wi[j + 3] * ev[j + 3]; }                                \
          for (; j < N_out; ++j) s0 += wi[j] * ev[j];                                                  \
          dxr[i] = (s0 + s1) + (s2 + s3);                                                              \
        }                                                                                              \
      }                                                                                                \
    }                                                                                                  \
    free(ev);                                                                                          \
  }                                                                                                    \
  free(cnt); free(bj); free(bc); free(pw);                                                             \
  return err;                                                                                          \
}

DEF_KERNELS(f32, float)
DEF_KERNELS(f64, double)

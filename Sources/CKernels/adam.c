#include "ckernels.h"

#include <math.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

/* No contraction of a*b+c into an FMA the scalar reference does not have. */
#pragma STDC FP_CONTRACT OFF

int ldm_kernels_isa(void) {
#if defined(__x86_64__)
    static int isa = -1;
    if (isa < 0) {
        __builtin_cpu_init();
        isa = (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) ? LDM_ISA_AVX2_FMA : LDM_ISA_PORTABLE;
    }
    return isa;
#else
    return LDM_ISA_PORTABLE;
#endif
}

/* One element of the update, then (with a shadow) LitEma's step towards the new value. The
   gradient is first multiplied by grad_scale, as clip_grad_norm_ leaves it. */
static void adam_portable(float *p, const float *g, float *m, float *v, float *s, int64_t begin, int64_t n,
                          const ldm_adam_constants *c, float grad_scale, float ema_weight) {
    for (int64_t i = begin; i < n; i++) {
        float param = p[i], grad = g[i] * grad_scale;
        if (c->l2) grad = fmaf(c->weight_decay, param, grad);
        if (c->decoupled) param = param * c->decay_factor;
        float diff = grad - m[i];
        float avg = c->lerp_small_weight ? fmaf(c->lerp_weight, diff, m[i]) : fmaf(-diff, c->lerp_complement, grad);
        m[i] = avg;
        float avg_sq = fmaf(c->one_minus_beta2 * grad, grad, v[i] * c->beta2);
        v[i] = avg_sq;
        float denom = sqrtf(avg_sq) / c->bc2_sqrt + c->eps;
        float updated = param + (c->neg_step_size * avg) / denom;
        p[i] = updated;
        if (s) s[i] = s[i] - ema_weight * (s[i] - updated);
    }
}

#if defined(__x86_64__)
/* with_ema is a constant at each call site below, so the compiler emits two loops. */
__attribute__((target("avx2,fma"), always_inline))
static inline void adam_avx2_fma_body(float *p, const float *g, float *m, float *v, float *s, int64_t n,
                                      const ldm_adam_constants *c, float grad_scale, float ema_weight, int with_ema) {
    const __m256 wd = _mm256_set1_ps(c->weight_decay), decay = _mm256_set1_ps(c->decay_factor);
    const __m256 lw = _mm256_set1_ps(c->lerp_weight), lc = _mm256_set1_ps(c->lerp_complement);
    const __m256 b2 = _mm256_set1_ps(c->beta2), omb2 = _mm256_set1_ps(c->one_minus_beta2);
    const __m256 bc2 = _mm256_set1_ps(c->bc2_sqrt), eps = _mm256_set1_ps(c->eps);
    const __m256 nss = _mm256_set1_ps(c->neg_step_size);
    const __m256 scale = _mm256_set1_ps(grad_scale), ew = _mm256_set1_ps(ema_weight);
    const __m256 sign = _mm256_set1_ps(-0.0f);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 param = _mm256_loadu_ps(p + i), grad = _mm256_mul_ps(_mm256_loadu_ps(g + i), scale);
        __m256 mi = _mm256_loadu_ps(m + i), vi = _mm256_loadu_ps(v + i);
        if (c->l2) grad = _mm256_fmadd_ps(wd, param, grad);
        if (c->decoupled) param = _mm256_mul_ps(param, decay);
        __m256 diff = _mm256_sub_ps(grad, mi);
        __m256 avg = c->lerp_small_weight ? _mm256_fmadd_ps(lw, diff, mi)
                                          : _mm256_fmadd_ps(_mm256_xor_ps(diff, sign), lc, grad);
        _mm256_storeu_ps(m + i, avg);
        __m256 avg_sq = _mm256_fmadd_ps(_mm256_mul_ps(omb2, grad), grad, _mm256_mul_ps(vi, b2));
        _mm256_storeu_ps(v + i, avg_sq);
        __m256 denom = _mm256_add_ps(_mm256_div_ps(_mm256_sqrt_ps(avg_sq), bc2), eps);
        __m256 updated = _mm256_add_ps(param, _mm256_div_ps(_mm256_mul_ps(nss, avg), denom));
        _mm256_storeu_ps(p + i, updated);
        if (with_ema) {
            __m256 si = _mm256_loadu_ps(s + i);
            _mm256_storeu_ps(s + i, _mm256_sub_ps(si, _mm256_mul_ps(ew, _mm256_sub_ps(si, updated))));
        }
    }
    adam_portable(p, g, m, v, s, i, n, c, grad_scale, ema_weight);
}

__attribute__((target("avx2,fma")))
static void adam_avx2_fma(float *p, const float *g, float *m, float *v, float *s, int64_t n,
                          const ldm_adam_constants *c, float grad_scale, float ema_weight) {
    if (s) adam_avx2_fma_body(p, g, m, v, s, n, c, grad_scale, ema_weight, 1);
    else adam_avx2_fma_body(p, g, m, v, NULL, n, c, grad_scale, ema_weight, 0);
}
#endif

void ldm_adam_ema_update_f32(float *p, const float *g, float *m, float *v, float *s, int64_t n,
                             const ldm_adam_constants *c, float grad_scale, float ema_weight, int isa) {
    if (isa == LDM_ISA_AUTO) isa = ldm_kernels_isa();
#if defined(__x86_64__)
    if (isa == LDM_ISA_AVX2_FMA && ldm_kernels_isa() == LDM_ISA_AVX2_FMA) {
        adam_avx2_fma(p, g, m, v, s, n, c, grad_scale, ema_weight);
        return;
    }
#endif
    adam_portable(p, g, m, v, s, 0, n, c, grad_scale, ema_weight);
}

#ifndef LDM_CKERNELS_H
#define LDM_CKERNELS_H

#include <stdint.h>

/* Small C kernels with per-ISA variants chosen at run time (AVX2+FMA where the CPU has it,
   portable C otherwise). Every variant computes bit-identical results: only IEEE-exact
   operations (add, mul, div, sqrt, fused multiply-add) in the same order. */

/* Scalars of one Adam/AdamW update, rounded to float as torch does for a float32 tensor. */
typedef struct {
    float weight_decay;      /* L2: g = fma(wd, p, g) when l2 != 0 */
    float decay_factor;      /* AdamW: p = p * (1 - lr*wd) when decoupled != 0 */
    float lerp_weight;       /* 1 - beta1 */
    float lerp_complement;   /* 1 - (1 - beta1) */
    float beta2;
    float one_minus_beta2;
    float bc2_sqrt;          /* sqrt(1 - beta2^t) */
    float eps;
    float neg_step_size;     /* -lr / (1 - beta1^t) */
    int32_t l2;
    int32_t decoupled;
    int32_t lerp_small_weight; /* |1 - beta1| < 0.5: torch's lerp form */
} ldm_adam_constants;

enum { LDM_ISA_AUTO = 0, LDM_ISA_PORTABLE = 1, LDM_ISA_AVX2_FMA = 2 };

/* The variant LDM_ISA_AUTO picks on this CPU. */
int ldm_kernels_isa(void);

/* One Adam/AdamW step over n elements in place (p, m, v), torch's single-tensor order, on a
   gradient multiplied by grad_scale first (clip_grad_norm_'s coefficient; 1 leaves it as is),
   and, when s is not NULL, LitEma's update of the shadow towards the new parameter right
   after: s = s - ema_weight * (s - p), ema_weight = 1 - decay. One pass over memory for what
   would otherwise be three; bit-identical to scaling the gradient, stepping and averaging one
   after the other (ldm_ema_update_f32).
   isa: LDM_ISA_AUTO, or a variant to force (an unsupported one falls back to portable). */
void ldm_adam_ema_update_f32(float *p, const float *g, float *m, float *v, float *s, int64_t n,
                             const ldm_adam_constants *c, float grad_scale, float ema_weight, int isa);

/* LitEma's update of n shadow values: s = s - weight * (s - p), weight = 1 - decay. */
void ldm_ema_update_f32(float *s, const float *p, int64_t n, float weight);

/* Σ x[i]² over n floats, in double, in one fixed order (portable C, no ISA variants). */
double ldm_sum_of_squares_f32(const float *x, int64_t n);

#endif

#include "ckernels.h"

/* No contraction into an FMA: the result must equal the fused Adam kernel's, which rounds the
   product before the subtraction. */
#pragma STDC FP_CONTRACT OFF

/* restrict lets the compiler vectorise the loop: shadows and parameters never overlap. */
void ldm_ema_update_f32(float *restrict s, const float *restrict p, int64_t n, float weight) {
    for (int64_t i = 0; i < n; i++) s[i] = s[i] - weight * (s[i] - p[i]);
}

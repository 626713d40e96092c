#include "ckernels.h"

/* Eight running sums, one per residue of i mod 8, added pairwise at the end: a single
   running sum waits on each add's latency (about four cycles an element); eight independent
   ones let the adds overlap. The order is fixed by the source, so the result is the same
   on every machine and run. */
double ldm_sum_of_squares_f32(const float *x, int64_t n) {
    double s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        for (int k = 0; k < 8; k++) {
            double v = (double)x[i + k];
            s[k] += v * v;
        }
    }
    for (int k = 0; i < n; i++, k++) {
        double v = (double)x[i];
        s[k] += v * v;
    }
    return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

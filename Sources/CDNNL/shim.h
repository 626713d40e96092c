#include <oneapi/dnnl/dnnl.h>

/* oneDNN's Debian build runs its kernels on GNU OpenMP; the thread count is per calling thread. */
void omp_set_num_threads(int num_threads);
int omp_get_thread_num(void);
int omp_get_num_threads(void);
int omp_in_parallel(void);

/* GNU OpenMP's entry for a parallel region (what `#pragma omp parallel` compiles to): runs
   fn(data) on every thread of a team of num_threads, the caller being thread 0, and returns
   when all have finished. The engine's own parallel loops use it so that they, oneDNN's
   primitives and its GEMM share one pool of threads instead of taking cores from each other. */
void GOMP_parallel(void (*fn)(void *), void *data, unsigned num_threads, unsigned flags);

/* dnnl_dims_t is a fixed C array (a tuple in Swift): these take the four sizes directly. */
static inline dnnl_status_t ldm_dnnl_md_4d(dnnl_memory_desc_t *md, int64_t d0, int64_t d1, int64_t d2, int64_t d3,
                                           dnnl_format_tag_t tag) {
    dnnl_dims_t dims = {d0, d1, d2, d3};
    return dnnl_memory_desc_init_by_tag(md, 4, dims, dnnl_f32, tag);
}

static inline dnnl_status_t ldm_dnnl_md_1d(dnnl_memory_desc_t *md, int64_t d0, dnnl_format_tag_t tag) {
    dnnl_dims_t dims = {d0};
    return dnnl_memory_desc_init_by_tag(md, 1, dims, dnnl_f32, tag);
}

/* Stride and padding (top, left / bottom, right) of a 2-D convolution. */
typedef struct { int64_t stride, top, left, bottom, right; } ldm_conv_window;

static inline dnnl_status_t ldm_dnnl_conv_forward(dnnl_convolution_desc_t *desc, const dnnl_memory_desc_t *src,
                                                  const dnnl_memory_desc_t *weights, const dnnl_memory_desc_t *bias,
                                                  const dnnl_memory_desc_t *dst, ldm_conv_window w,
                                                  dnnl_alg_kind_t alg) {
    dnnl_dims_t strides = {w.stride, w.stride}, pl = {w.top, w.left}, pr = {w.bottom, w.right};
    return dnnl_convolution_forward_desc_init(desc, dnnl_forward_training, alg,
                                              src, weights, bias, dst, strides, pl, pr);
}

static inline dnnl_status_t ldm_dnnl_conv_backward_data(dnnl_convolution_desc_t *desc, const dnnl_memory_desc_t *diff_src,
                                                        const dnnl_memory_desc_t *weights, const dnnl_memory_desc_t *diff_dst,
                                                        ldm_conv_window w, dnnl_alg_kind_t alg) {
    dnnl_dims_t strides = {w.stride, w.stride}, pl = {w.top, w.left}, pr = {w.bottom, w.right};
    return dnnl_convolution_backward_data_desc_init(desc, alg, diff_src, weights, diff_dst,
                                                    strides, pl, pr);
}

static inline dnnl_status_t ldm_dnnl_conv_backward_weights(dnnl_convolution_desc_t *desc, const dnnl_memory_desc_t *src,
                                                           const dnnl_memory_desc_t *diff_weights,
                                                           const dnnl_memory_desc_t *diff_bias,
                                                           const dnnl_memory_desc_t *diff_dst, ldm_conv_window w,
                                                           dnnl_alg_kind_t alg) {
    dnnl_dims_t strides = {w.stride, w.stride}, pl = {w.top, w.left}, pr = {w.bottom, w.right};
    return dnnl_convolution_backward_weights_desc_init(desc, alg, src, diff_weights, diff_bias,
                                                       diff_dst, strides, pl, pr);
}

/* The argument indices are macros over macros; plain constants for Swift. */
static inline int ldm_dnnl_arg_src(void) { return DNNL_ARG_SRC; }
static inline int ldm_dnnl_arg_dst(void) { return DNNL_ARG_DST; }
static inline int ldm_dnnl_arg_weights(void) { return DNNL_ARG_WEIGHTS; }
static inline int ldm_dnnl_arg_bias(void) { return DNNL_ARG_BIAS; }
static inline int ldm_dnnl_arg_diff_src(void) { return DNNL_ARG_DIFF_SRC; }
static inline int ldm_dnnl_arg_diff_dst(void) { return DNNL_ARG_DIFF_DST; }
static inline int ldm_dnnl_arg_diff_weights(void) { return DNNL_ARG_DIFF_WEIGHTS; }
static inline int ldm_dnnl_arg_diff_bias(void) { return DNNL_ARG_DIFF_BIAS; }
static inline int ldm_dnnl_arg_from(void) { return DNNL_ARG_FROM; }
static inline int ldm_dnnl_arg_to(void) { return DNNL_ARG_TO; }

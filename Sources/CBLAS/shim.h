#include <cblas.h>
/* OpenBLAS extensions: thread control, so parallel loops never nest BLAS threads. */
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);

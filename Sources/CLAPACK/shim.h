/* The LAPACK routines the evaluation metrics use, as OpenBLAS exports them (Fortran ABI). */
void dsyevd_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda, double *w,
             double *work, const int *lwork, int *iwork, const int *liwork, int *info);

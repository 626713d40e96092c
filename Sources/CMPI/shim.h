#include <mpi.h>
/* MPI_COMM_WORLD, MPI_FLOAT, MPI_SUM … are macros over globals that Swift cannot import;
   these getters expose them. */
static inline MPI_Comm ldm_comm_world(void) { return MPI_COMM_WORLD; }
static inline MPI_Datatype ldm_float(void) { return MPI_FLOAT; }
static inline MPI_Datatype ldm_double(void) { return MPI_DOUBLE; }
static inline MPI_Datatype ldm_int64(void) { return MPI_INT64_T; }
static inline MPI_Datatype ldm_uint8(void) { return MPI_UINT8_T; }
static inline MPI_Datatype ldm_int32(void) { return MPI_INT32_T; }
static inline MPI_Op ldm_op_sum(void) { return MPI_SUM; }
static inline MPI_Op ldm_op_max(void) { return MPI_MAX; }
static inline MPI_Op ldm_op_min(void) { return MPI_MIN; }
static inline void *ldm_in_place(void) { return MPI_IN_PLACE; }
static inline MPI_Errhandler ldm_errors_return(void) { return MPI_ERRORS_RETURN; }
static inline int ldm_max_error_string(void) { return MPI_MAX_ERROR_STRING; }
/* Non-blocking collectives: the null request and "no status wanted". */
static inline MPI_Request ldm_request_null(void) { return MPI_REQUEST_NULL; }
static inline MPI_Status *ldm_status_ignore(void) { return MPI_STATUS_IGNORE; }
/* MPI-3 shared memory: the ranks of `comm` that share a machine, a window of `bytes` on each
   of them that all of them map, and where a rank's part of it sits in this process. */
static inline int ldm_comm_split_shared(MPI_Comm comm, MPI_Comm *node) {
    return MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, node);
}
static inline int ldm_win_allocate_shared(MPI_Aint bytes, MPI_Comm node, void **base, MPI_Win *win) {
    return MPI_Win_allocate_shared(bytes, 1, MPI_INFO_NULL, node, base, win);
}
static inline int ldm_win_shared_query(MPI_Win win, int rank, void **base) {
    MPI_Aint bytes; int unit;
    return MPI_Win_shared_query(win, rank, &bytes, &unit, base);
}
static inline int ldm_mode_nocheck(void) { return MPI_MODE_NOCHECK; }

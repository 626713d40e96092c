/// Memory that every rank of a job maps into its address space (MPI-3 shared windows on one
/// machine): each rank owns a region, and any rank can read or write any region directly,
/// without the copies a message takes.
///
/// Plain loads and stores do not order themselves across processes: a rank's writes are
/// only guaranteed visible to the others after `synchronize()`, which every rank calls.
public protocol SharedMemory: AnyObject {
    /// The start of `rank`'s region, as mapped in this process.
    func region(of rank: Int) -> UnsafeMutableRawPointer
    /// Returns once every rank has called it; every write any rank made before its call is
    /// then visible to every rank. A collective.
    func synchronize() throws
}

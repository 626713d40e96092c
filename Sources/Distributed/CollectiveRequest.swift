import Foundation

/// A collective started without waiting for it (`Communicator.startAllreduce`). Its buffer
/// belongs to the transport until the request completes.
///
/// With one thread per rank MPI moves data only inside MPI calls, so whoever started the
/// request should `test` it now and then while computing: that is what lets the transfer
/// overlap with the computation instead of happening all at `wait`.
public protocol CollectiveRequest: AnyObject {
    /// Lets the transport progress; true once the collective has completed.
    func test() throws -> Bool
    /// Returns when the collective has completed.
    func wait() throws
}

/// A request that completed when it was started (a world of one rank).
public final class CompletedRequest: CollectiveRequest {
    public init() {}
    public func test() throws -> Bool { true }
    public func wait() throws {}
}

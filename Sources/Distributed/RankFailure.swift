import Foundation

/// Ends the whole job when one rank cannot continue.
///
/// A rank that merely exits (or throws out of main) leaves the others blocked in their next
/// collective until someone notices the hang. Aborting through the communicator makes
/// `mpirun` kill every rank and exit non-zero at once, and the `rank R:` prefix on stderr
/// tells which rank failed and why.
public enum RankFailure {
    /// Prints `rank R: why` to stderr and aborts every rank with `code` (non-zero).
    public static func abort(_ why: String, communicator: Communicator, code: Int32 = 1) -> Never {
        precondition(code != 0, "RankFailure.abort needs a non-zero exit code")
        FileHandle.standardError.write(Data("rank \(communicator.rank): \(why)\n".utf8))
        communicator.abort(code: code)
    }

    /// Runs `body`; an error thrown out of it aborts the job naming this rank and `context`.
    public static func guarding<T>(_ context: String, communicator: Communicator, code: Int32 = 1,
                                   _ body: () throws -> T) -> T {
        do {
            return try body()
        } catch {
            abort("\(context): \(error)", communicator: communicator, code: code)
        }
    }

    /// Aborts the job when `value` (a loss, a gradient norm) is NaN or infinite.
    public static func requireFinite(_ value: Float, _ what: @autoclosure () -> String,
                                     communicator: Communicator, code: Int32 = 1) {
        if !value.isFinite { abort("\(what()) is \(value)", communicator: communicator, code: code) }
    }
}

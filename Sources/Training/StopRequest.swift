import Distributed
import Foundation

/// A request to stop training cleanly (Slurm's time-limit SIGTERM, preemption, Ctrl-C): the
/// loop finishes the current step, writes a checkpoint and returns.
///
/// Ranks may receive the signal at different moments (or only some of them), so the loop
/// asks `agreed(by:)` once per step: an allreduce of the flag (one integer, cheap) after
/// which every rank stops at the same step. A second signal ends the process at once.
public final class StopRequest: @unchecked Sendable {
    public static let shared = StopRequest()

    private let lock = NSLock()
    private var signalNumber: Int32?
    private var requested = false
    private var sources: [DispatchSourceSignal] = []

    /// Catches `signals` (SIGTERM and SIGINT by default) from now on.
    public func installSignalHandlers(_ signals: [Int32] = [SIGTERM, SIGINT]) {
        lock.lock()
        defer { lock.unlock() }
        guard sources.isEmpty else { return }
        for number in signals {
            Glibc.signal(number, SIG_IGN)  // delivery goes to the dispatch source instead of ending the process
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { [weak self] in self?.received(number) }
            source.resume()
            sources.append(source)
        }
    }

    private func received(_ number: Int32) {
        lock.lock()
        let again = requested
        requested = true
        signalNumber = number
        lock.unlock()
        if again {
            FileHandle.standardError.write(Data("signal \(number) again: exiting without a checkpoint\n".utf8))
            Glibc.signal(number, SIG_DFL)
            raise(number)
        } else {
            FileHandle.standardError.write(Data("signal \(number): will checkpoint and stop after this step\n".utf8))
        }
    }

    /// Asks for a stop as a signal would (tests, or an in-process controller).
    public func request() {
        lock.lock()
        requested = true
        lock.unlock()
    }

    /// Forgets a request (tests).
    public func reset() {
        lock.lock()
        requested = false
        signalNumber = nil
        lock.unlock()
    }

    /// Whether this process has been asked to stop.
    public var isRequested: Bool {
        lock.lock()
        defer { lock.unlock() }
        return requested
    }

    /// The signal that asked, if one did.
    public var receivedSignal: Int32? {
        lock.lock()
        defer { lock.unlock() }
        return signalNumber
    }

    /// Collective: whether any rank has been asked to stop. Every rank must call it at the
    /// same point of every step; all get the same answer.
    public func agreed(by communicator: Communicator) throws -> Bool {
        try communicator.allreduce(isRequested ? 1 : 0, op: .max) > 0
    }
}

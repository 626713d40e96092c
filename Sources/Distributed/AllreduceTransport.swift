import Foundation

/// How the blocking gradient allreduce moves data between ranks.
public enum AllreduceTransport: String, Sendable, CaseIterable {
    /// Through memory all ranks map when they all run on one machine (`SharedMemoryAllreduce`),
    /// MPI_Allreduce otherwise.
    case automatic = "auto"
    /// Always MPI_Allreduce.
    case mpi

    public static let environmentVariable = "LDM_ALLREDUCE"

    /// `LDM_ALLREDUCE` (auto | mpi; unset means auto).
    public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment) throws
        -> AllreduceTransport {
        guard let value = environment[environmentVariable], !value.isEmpty else { return .automatic }
        guard let transport = AllreduceTransport(rawValue: value) else { throw AllreduceTransportError(value: value) }
        return transport
    }
}

/// `LDM_ALLREDUCE` holds something other than a transport's name.
public struct AllreduceTransportError: Error, CustomStringConvertible {
    public let value: String
    public var description: String {
        "\(AllreduceTransport.environmentVariable)=\(value) is not a transport; use one of "
            + AllreduceTransport.allCases.map(\.rawValue).joined(separator: ", ")
    }
}

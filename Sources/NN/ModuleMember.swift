import Tensor

/// What a module holds under one name: the things `Module` traversal knows about.
public enum ModuleMember {
    /// A trainable tensor (optimised, saved).
    case parameter(Tensor)
    /// State that is saved and loaded but never optimised (BatchNorm running statistics).
    case buffer(Tensor)
    /// A child module; its members appear under `name.`.
    case module(Module)
}

/// A property wrapper marking a tensor as a buffer: part of the state dict, not a parameter,
/// e.g. `@Buffer var runningMean: Tensor`, saved as `running_mean`.
@propertyWrapper
public struct Buffer {
    public var wrappedValue: Tensor

    public init(wrappedValue: Tensor) {
        self.wrappedValue = wrappedValue
    }
}

/// The checkpoint key for a Swift property name: the leading underscore of a property
/// wrapper's storage is dropped and camelCase becomes snake_case (`convOut` → `conv_out`).
/// Digits are kept as they are (`conv1` stays `conv1`); `Module.keyOverrides` covers the rest.
public func checkpointKey(forPropertyName name: String) -> String {
    var out = ""
    for ch in name.drop(while: { $0 == "_" }) {
        if ch.isUppercase {
            if !out.isEmpty { out.append("_") }
            out.append(contentsOf: ch.lowercased())
        } else {
            out.append(ch)
        }
    }
    return out
}

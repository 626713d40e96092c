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

/// A property wrapper that gives a member a checkpoint key the Swift name cannot produce,
/// e.g. `@Key("block_1") var block1: ResnetBlock` (camelCase → snake_case leaves digits alone).
@propertyWrapper
public struct Key<Value> {
    public var wrappedValue: Value
    public let key: String

    public init(wrappedValue: Value, _ key: String) {
        self.wrappedValue = wrappedValue
        self.key = key
    }
}

/// A property wrapper marking a tensor as a buffer: part of the state dict, not a parameter.
/// `@Buffer var runningMean: Tensor` is saved as `running_mean`; `@Buffer("key")` overrides it.
@propertyWrapper
public struct Buffer {
    public var wrappedValue: Tensor
    public let key: String?

    public init(wrappedValue: Tensor, _ key: String? = nil) {
        self.wrappedValue = wrappedValue
        self.key = key
    }
}

/// Lets traversal see through `Key` without knowing its generic argument.
protocol KeyedMember {
    var key: String { get }
    var memberValue: Any { get }
}

extension Key: KeyedMember {
    var memberValue: Any { wrappedValue }
}

/// The checkpoint key for a Swift property name: the leading underscore of a property
/// wrapper's storage is dropped and camelCase becomes snake_case (`convOut` → `conv_out`).
/// Digits are kept as they are (`conv1` stays `conv1`); use `@Key` for `block_1`.
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

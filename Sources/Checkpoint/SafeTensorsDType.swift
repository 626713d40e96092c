/// Element types a safetensors header can name (the byte-sized ones of the reference
/// implementation). Reading converts the floating-point ones to Float32; writing produces
/// F32, F16 or BF16.
public enum SafeTensorsDType: String, CaseIterable, Sendable {
    case bool = "BOOL"
    case uint8 = "U8", int8 = "I8"
    case float8E4M3 = "F8_E4M3", float8E5M2 = "F8_E5M2"
    case int16 = "I16", uint16 = "U16", float16 = "F16", bfloat16 = "BF16"
    case int32 = "I32", uint32 = "U32", float32 = "F32"
    case float64 = "F64", int64 = "I64", uint64 = "U64"

    /// Bytes per element.
    public var byteSize: Int {
        switch self {
        case .bool, .uint8, .int8, .float8E4M3, .float8E5M2: return 1
        case .int16, .uint16, .float16, .bfloat16: return 2
        case .int32, .uint32, .float32: return 4
        case .float64, .int64, .uint64: return 8
        }
    }

    /// Whether `SafeTensorsFile.tensor(named:)` can convert this type to Float32.
    public var isReadableAsFloat32: Bool {
        switch self {
        case .float32, .float16, .bfloat16, .float64: return true
        default: return false
        }
    }

    /// Whether `SafeTensors.write` can store tensors in this type.
    public var isWritable: Bool {
        switch self {
        case .float32, .float16, .bfloat16: return true
        default: return false
        }
    }
}

import CDNNL
import Foundation

// The pieces of oneDNN's C API the backend uses: one CPU engine and stream for the process,
// primitives that free themselves, memory descriptors compared and sized, and execution over
// caller-owned buffers (oneDNN never allocates tensor data here).

struct OneDNNError: Error, CustomStringConvertible {
    let call: String, status: dnnl_status_t
    var description: String { "oneDNN \(call) failed with status \(status.rawValue)" }
}

enum OneDNN {
    static func check(_ status: dnnl_status_t, _ call: @autoclosure () -> String) throws {
        if status != dnnl_success { throw OneDNNError(call: call(), status: status) }
    }

    /// The CPU engine and an in-order stream, or nil when oneDNN cannot start here.
    static let context: (engine: dnnl_engine_t, stream: dnnl_stream_t)? = {
        var engine: dnnl_engine_t?
        guard dnnl_engine_create(&engine, dnnl_cpu, 0) == dnnl_success, let engine else { return nil }
        var stream: dnnl_stream_t?
        guard dnnl_stream_create(&stream, engine, dnnl_stream_default_flags.rawValue) == dnnl_success, let stream else { return nil }
        return (engine, stream)
    }()

    static var engine: dnnl_engine_t { context!.engine }

    /// Threads for the next primitive run on the calling thread (OpenMP's count is per thread).
    @inline(__always)
    static func useThreads(_ n: Int) { omp_set_num_threads(Int32(max(n, 1))) }

    static func plain(_ d0: Int, _ d1: Int, _ d2: Int, _ d3: Int, _ tag: dnnl_format_tag_t) -> dnnl_memory_desc_t {
        var md = dnnl_memory_desc_t()
        let status = ldm_dnnl_md_4d(&md, Int64(d0), Int64(d1), Int64(d2), Int64(d3), tag)
        precondition(status == dnnl_success, "oneDNN memory descriptor \([d0, d1, d2, d3]) failed: \(status.rawValue)")
        return md
    }

    static func vector(_ n: Int) -> dnnl_memory_desc_t {
        var md = dnnl_memory_desc_t()
        let status = ldm_dnnl_md_1d(&md, Int64(n), dnnl_a)
        precondition(status == dnnl_success, "oneDNN memory descriptor [\(n)] failed: \(status.rawValue)")
        return md
    }

    static func equal(_ a: dnnl_memory_desc_t, _ b: dnnl_memory_desc_t) -> Bool {
        var a = a, b = b
        return dnnl_memory_desc_equal(&a, &b) != 0
    }

    /// Floats a buffer in layout `md` needs (blocked layouts pad channels to the block).
    static func floatCount(_ md: dnnl_memory_desc_t) -> Int {
        var md = md
        return (dnnl_memory_desc_get_size(&md) + 3) / 4
    }
}

/// A primitive descriptor and its primitive, created once per shape and kept.
final class OneDNNPrimitive: @unchecked Sendable {
    let descriptor: dnnl_primitive_desc_t
    let primitive: dnnl_primitive_t

    /// `makeDescriptor` fills in a primitive descriptor; nil (an error) when oneDNN has no
    /// implementation for it.
    init(_ what: String, _ makeDescriptor: (inout dnnl_primitive_desc_t?) -> dnnl_status_t) throws {
        var pd: dnnl_primitive_desc_t?
        try OneDNN.check(makeDescriptor(&pd), "\(what): primitive descriptor")
        guard let pd else { throw OneDNNError(call: "\(what): primitive descriptor", status: dnnl_runtime_error) }
        var p: dnnl_primitive_t?
        let status = dnnl_primitive_create(&p, pd)
        guard status == dnnl_success, let p else {
            dnnl_primitive_desc_destroy(pd)
            throw OneDNNError(call: "\(what): primitive", status: status)
        }
        descriptor = pd
        primitive = p
    }

    deinit {
        dnnl_primitive_destroy(primitive)
        dnnl_primitive_desc_destroy(descriptor)
    }

    /// The layout the primitive chose for `query` (e.g. dnnl_query_src_md).
    func layout(_ query: dnnl_query_t) -> dnnl_memory_desc_t {
        dnnl_primitive_desc_query_md(descriptor, query, 0).pointee
    }

    /// The implementation oneDNN picked, e.g. "jit:avx512_core".
    var implementation: String {
        var s: UnsafePointer<CChar>?
        guard dnnl_primitive_desc_query(descriptor, dnnl_query_impl_info_str, 0, &s) == dnnl_success, let s else { return "?" }
        return String(cString: s)
    }

    /// Runs the primitive on buffers described by (argument, layout, pointer) and waits.
    func run(_ arguments: [(Int32, dnnl_memory_desc_t, UnsafeMutableRawPointer)], threads: Int) {
        var memories: [dnnl_memory_t?] = []
        memories.reserveCapacity(arguments.count)
        defer { for m in memories { dnnl_memory_destroy(m) } }
        var args: [dnnl_exec_arg_t] = []
        for (arg, md, pointer) in arguments {
            var md = md
            var memory: dnnl_memory_t?
            let status = dnnl_memory_create(&memory, &md, OneDNN.engine, pointer)
            precondition(status == dnnl_success, "oneDNN memory object failed: \(status.rawValue)")
            memories.append(memory)
            args.append(dnnl_exec_arg_t(arg: arg, memory: memory))
        }
        OneDNN.useThreads(threads)
        let stream = OneDNN.context!.stream
        let status = dnnl_primitive_execute(primitive, stream, Int32(args.count), args)
        precondition(status == dnnl_success, "oneDNN primitive execution failed: \(status.rawValue)")
        dnnl_stream_wait(stream)
    }
}

/// A layout change between two descriptors of the same tensor; identity when they are equal.
final class OneDNNReorder: @unchecked Sendable {
    let from: dnnl_memory_desc_t, to: dnnl_memory_desc_t
    let primitive: OneDNNPrimitive?

    init(from: dnnl_memory_desc_t, to: dnnl_memory_desc_t) throws {
        self.from = from
        self.to = to
        if OneDNN.equal(from, to) {
            primitive = nil
        } else {
            var f = from, t = to
            primitive = try OneDNNPrimitive("reorder") {
                dnnl_reorder_primitive_desc_create(&$0, &f, OneDNN.engine, &t, OneDNN.engine, nil)
            }
        }
    }

    var isIdentity: Bool { primitive == nil }

    func run(from source: UnsafeRawPointer, to destination: UnsafeMutableRawPointer, threads: Int) {
        guard let primitive else {
            if source != UnsafeRawPointer(destination) {
                destination.copyMemory(from: source, byteCount: OneDNN.floatCount(to) * 4)
            }
            return
        }
        primitive.run([(ldm_dnnl_arg_from(), from, UnsafeMutableRawPointer(mutating: source)),
                       (ldm_dnnl_arg_to(), to, destination)], threads: threads)
    }
}

/// A spatially aligned condition joined to z_t on the channels (the reference's `concat`
/// conditioning key): what it is made of and how many channels it adds.
public struct SpatialConditionConfig: Codable, Equatable, Sendable {
    public enum Task: String, Codable, Sendable {
        /// The image downsampled `factor`× (bicubic), resized to the latent grid (τ = identity,
        /// as LDM-SR and SR3): the model learns the high-resolution image's latent.
        case superResolution = "super-resolution"
        /// The latent of the image with a masked region blanked, plus the mask at the latent
        /// grid: the model fills the region and keeps the rest.
        case inpainting
    }

    public var task: Task = .superResolution
    /// Super-resolution: the high-resolution side over the low-resolution one (4: 8×8 → 32×32).
    public var factor = 4
    /// Inpainting: the share of training masks that are random boxes (the rest are free-form strokes).
    public var boxFraction = 0.5

    public init(task: Task = .superResolution, factor: Int = 4) {
        self.task = task
        self.factor = factor
    }

    enum CodingKeys: String, CodingKey { case task, factor, boxFraction = "box_fraction" }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = SpatialConditionConfig()
        task = try c.decodeIfPresent(Task.self, forKey: .task) ?? d.task
        factor = try c.decodeIfPresent(Int.self, forKey: .factor) ?? d.factor
        boxFraction = try c.decodeIfPresent(Double.self, forKey: .boxFraction) ?? d.boxFraction
    }

    /// Channels the condition adds to z_t: the image's (super-resolution), or the masked
    /// image's latent and the mask (inpainting).
    public func channels(latentChannels: Int, imageChannels: Int) -> Int {
        switch task {
        case .superResolution: return imageChannels
        case .inpainting: return latentChannels + 1
        }
    }

    func validationErrors(prefix p: String) -> [String] {
        var errors: [String] = []
        if task == .superResolution && factor < 1 { errors.append("\(p).factor must be at least 1, got \(factor)") }
        if !(0...1).contains(boxFraction) { errors.append("\(p).box_fraction must be in [0, 1], got \(boxFraction)") }
        return errors
    }
}

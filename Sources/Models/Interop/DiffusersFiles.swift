import Foundation

/// Where a diffusers model's files are, for every converter: a model directory, a pipeline
/// directory with the model in a subfolder (`vae/`, `unet/`), or the weights file itself.
enum DiffusersFiles {
    static let weightsFileName = "diffusion_pytorch_model.safetensors"
    static let configFileName = "config.json"

    /// The weights file and config.json (beside the weights unless `configJSON` is given).
    static func locate(_ path: URL, configJSON: URL?, pipelineSubfolder: String) throws -> (weights: URL, config: URL) {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path.path, isDirectory: &isDirectory) else {
            throw DiffusersVAE.ConversionError(source: path.path, ["no such file or directory"])
        }
        var directory = isDirectory.boolValue ? path : path.deletingLastPathComponent()
        var weights = path
        if isDirectory.boolValue {
            let nested = directory.appendingPathComponent(pipelineSubfolder + "/" + weightsFileName)
            if !FileManager.default.fileExists(atPath: directory.appendingPathComponent(weightsFileName).path),
               FileManager.default.fileExists(atPath: nested.path) {
                directory = directory.appendingPathComponent(pipelineSubfolder)
            }
            weights = directory.appendingPathComponent(weightsFileName)
            guard FileManager.default.fileExists(atPath: weights.path) else {
                throw DiffusersVAE.ConversionError(source: path.path, ["no \(weightsFileName) in it or in \(pipelineSubfolder)/ (pass the "
                                                                       + "weights file itself for another name, e.g. a .fp16 variant)"])
            }
        }
        let config = configJSON ?? directory.appendingPathComponent(configFileName)
        guard FileManager.default.fileExists(atPath: config.path) else {
            throw DiffusersVAE.ConversionError(source: config.path, ["diffusers config.json not found; pass it with --config-json"])
        }
        return (weights, config)
    }
}

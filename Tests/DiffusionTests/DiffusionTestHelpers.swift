@_exported import TestSupport
import Checkpoint
import Foundation

/// A fixture under Tests/DiffusionTests/Fixtures (Tests/Fixtures/generate_unet_fixtures.py).
func fixtureURL(_ name: String) -> URL {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/\(name)")
}

@_exported import TestSupport
// Numeric assertions (assertGradientsMatch, randn, assertClose) for every file of this target.
import XCTest
@testable import Tensor


import Foundation
import XCTest

/// Launch/slurm.sbatch run by bash with stand-ins for srun, squeue and scontrol (no Slurm
/// here) and a fake ldm that "checkpoints" on SIGTERM: checks the command line it builds,
/// the thread variables, and the forward-SIGTERM-then-requeue logic.
final class SlurmScriptTests: XCTestCase {
    var dir: URL!
    var log: URL { dir.appendingPathComponent("log") }
    var started: URL { dir.appendingPathComponent("started") }

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("slurm-test-\(UUID().uuidString)")
        let bin = dir.appendingPathComponent("bin")
        try FileManager.default.createDirectory(at: bin, withIntermediateDirectories: true)
        let tools = [
            // srun: log its options, then become the program (one task), so signals reach it.
            "srun": #"opts=(); while [[ "$1" == --* ]]; do opts+=("$1"); shift; done; echo "srun ${opts[*]}" >> "$FAKE_LOG"; exec "$@""#,
            "squeue": #"echo "$FAKE_TIME_LEFT""#,
            "scontrol": #"echo "scontrol $*" >> "$FAKE_LOG""#,
            "ldm": #"""
                echo "ldm ${*@Q} threads=$LDM_NUM_THREADS/$OPENBLAS_NUM_THREADS srun_cpus=$SRUN_CPUS_PER_TASK" >> "$FAKE_LOG"
                trap 'echo "ldm checkpointed" >> "$FAKE_LOG"; exit 0' TERM
                touch "$FAKE_STARTED"
                # Short sleeps: the trap runs between them, and no orphaned sleep outlives us.
                if [ "$1" = train-autoencoder ]; then for _ in $(seq 300); do sleep 0.1; done; fi
                exit 4
                """#,
        ]
        for (name, body) in tools {
            let url = bin.appendingPathComponent(name)
            try ("#!/usr/bin/env bash\n" + body + "\n").write(to: url, atomically: true, encoding: .utf8)
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: url.path)
        }
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    /// Runs the batch script; with `terminateAfterStart`, sends it SIGTERM (as Slurm's
    /// --signal=B:TERM does) once the fake ldm is running.
    func runBatch(_ arguments: [String], timeLeft: String, terminateAfterStart: Bool) throws -> (status: Int32, log: String) {
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Launch/slurm.sbatch")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = [script.path] + arguments
        var env = ProcessInfo.processInfo.environment
        env["PATH"] = dir.appendingPathComponent("bin").path + ":" + (env["PATH"] ?? "/usr/bin:/bin")
        env.merge(["SLURM_JOB_ID": "42", "SLURM_CPUS_PER_TASK": "3", "SLURM_NTASKS": "4", "SLURM_SUBMIT_DIR": dir.path,
                   "LDM_BINARY": dir.appendingPathComponent("bin/ldm").path, "FAKE_LOG": log.path,
                   "FAKE_STARTED": started.path, "FAKE_TIME_LEFT": timeLeft]) { $1 }
        process.environment = env
        process.standardError = FileHandle.nullDevice
        let finished = DispatchSemaphore(value: 0)
        process.terminationHandler = { _ in finished.signal() }
        try process.run()
        if terminateAfterStart {
            let deadline = Date().addingTimeInterval(10)
            while !FileManager.default.fileExists(atPath: started.path) && Date() < deadline { usleep(20_000) }
            XCTAssertTrue(FileManager.default.fileExists(atPath: started.path), "the fake ldm never started")
            usleep(100_000)  // let the batch shell reach its wait
            process.terminate()
        }
        if finished.wait(timeout: .now() + 20) == .timedOut {
            kill(process.processIdentifier, SIGKILL)
            finished.wait()
            XCTFail("slurm.sbatch did not finish: \((try? String(contentsOf: log, encoding: .utf8)) ?? "")")
        }
        return (process.terminationStatus, (try? String(contentsOf: log, encoding: .utf8)) ?? "")
    }

    func testTimeLimitWarningCheckpointsThenRequeuesWithResume() throws {
        let (status, log) = try runBatch(["train-autoencoder", "--config", "Configs/a b.yaml"], timeLeft: "1:45", terminateAfterStart: true)
        XCTAssertEqual(status, 0, log)
        XCTAssertEqual(log.split(separator: "\n").map(String.init), [
            "srun --mpi=pmix --kill-on-bad-exit=1",
            "ldm 'train-autoencoder' '--config' 'Configs/a b.yaml' '--resume' 'latest' threads=3/3 srun_cpus=3",
            "ldm checkpointed",
            "scontrol requeue 42",
        ])
    }

    func testTermFarFromTheLimitIsNotRequeued() throws {
        let (status, log) = try runBatch(["train-ldm", "--resume", "Checkpoints/x"], timeLeft: "1-02:00:00", terminateAfterStart: false)
        XCTAssertEqual(status, 4, "without a signal the ranks' status is the job's")
        XCTAssertTrue(log.contains("ldm 'train-ldm' '--resume' 'Checkpoints/x' threads=3/3"), "an explicit --resume is kept: \(log)")
        XCTAssertFalse(log.contains("latest"), log)
        try FileManager.default.removeItem(at: self.log)
        try FileManager.default.removeItem(at: started)

        let (cancelled, cancelLog) = try runBatch(["train-autoencoder"], timeLeft: "1-02:00:00", terminateAfterStart: true)
        XCTAssertEqual(cancelled, 0, cancelLog)
        XCTAssertTrue(cancelLog.contains("ldm checkpointed"), cancelLog)
        XCTAssertFalse(cancelLog.contains("scontrol"), "a TERM a day before the limit is a cancel: \(cancelLog)")
    }

    func testOtherSubcommandsGetNoResume() throws {
        let (status, log) = try runBatch(["sample", "--config", "c.yaml"], timeLeft: "UNLIMITED", terminateAfterStart: false)
        XCTAssertEqual(status, 4)
        XCTAssertTrue(log.contains("ldm 'sample' '--config' 'c.yaml' threads=3/3"), log)
    }
}

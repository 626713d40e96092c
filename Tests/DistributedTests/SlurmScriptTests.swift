import Foundation
import XCTest

/// Launch/slurm.sbatch run by bash with stand-ins for srun, squeue, scancel and scontrol (no
/// Slurm here) and a fake ldm that "checkpoints" on SIGTERM: checks the command line it builds,
/// the thread variables, and the warning → signal the steps → requeue logic. (Launch/slurm-test.sh
/// runs the script under a real Slurm.)
final class SlurmScriptTests: XCTestCase {
    var dir: URL!
    var log: URL { dir.appendingPathComponent("log") }
    var started: URL { dir.appendingPathComponent("started") }
    var rankPID: URL { dir.appendingPathComponent("rank.pid") }

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("slurm-test-\(UUID().uuidString)")
        let bin = dir.appendingPathComponent("bin")
        try FileManager.default.createDirectory(at: bin, withIntermediateDirectories: true)
        let tools = [
            // srun: log its options, then start the program (one task) with SIGTERM at its
            // default, as slurmstepd starts tasks (the script starts srun ignoring SIGTERM).
            "srun": #"opts=(); while [[ "$1" == --* ]]; do opts+=("$1"); shift; done; echo "srun ${opts[*]}" >> "$FAKE_LOG"; exec env --default-signal=TERM "$@""#,
            "squeue": #"echo "$FAKE_STATE""#,
            "scontrol": #"echo "scontrol $*" >> "$FAKE_LOG""#,
            // scancel --signal=TERM: Slurm signals the job's steps, i.e. the task.
            "scancel": #"echo "scancel $*" >> "$FAKE_LOG"; kill -TERM "$(cat "$FAKE_RANK_PID")""#,
            "ldm": #"""
                echo "ldm ${*@Q} threads=$LDM_NUM_THREADS/$OPENBLAS_NUM_THREADS srun_cpus=$SRUN_CPUS_PER_TASK" >> "$FAKE_LOG"
                trap 'echo "ldm checkpointed" >> "$FAKE_LOG"; exit 0' TERM
                echo $$ > "$FAKE_RANK_PID"
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

    enum Signal { case none, timeLimitWarning, scancel }

    /// Runs the batch script; once the fake ldm runs, sends the time-limit warning (SIGUSR1 to
    /// the script, as --signal=B:USR1 does) or what scancel sends (SIGTERM to the script and
    /// to the task). `state` is what squeue reports for the job afterwards.
    func runBatch(_ arguments: [String], signal: Signal, state: String = "RUNNING") throws -> (status: Int32, log: String) {
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Launch/slurm.sbatch")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = [script.path] + arguments
        var env = ProcessInfo.processInfo.environment
        env["PATH"] = dir.appendingPathComponent("bin").path + ":" + (env["PATH"] ?? "/usr/bin:/bin")
        env.merge(["SLURM_JOB_ID": "42", "SLURM_CPUS_PER_TASK": "3", "SLURM_NTASKS": "4", "SLURM_SUBMIT_DIR": dir.path,
                   "LDM_BINARY": dir.appendingPathComponent("bin/ldm").path, "FAKE_LOG": log.path,
                   "FAKE_STARTED": started.path, "FAKE_RANK_PID": rankPID.path, "FAKE_STATE": state]) { $1 }
        process.environment = env
        process.standardError = FileHandle.nullDevice
        let finished = DispatchSemaphore(value: 0)
        process.terminationHandler = { _ in finished.signal() }
        try process.run()
        if signal != .none {
            let deadline = Date().addingTimeInterval(10)
            while !FileManager.default.fileExists(atPath: started.path) && Date() < deadline { usleep(20_000) }
            XCTAssertTrue(FileManager.default.fileExists(atPath: started.path), "the fake ldm never started")
            usleep(100_000)  // let the batch shell reach its wait
            switch signal {
            case .timeLimitWarning:
                kill(process.processIdentifier, SIGUSR1)
            case .scancel:
                process.terminate()
                if let pid = Int32((try? String(contentsOf: rankPID, encoding: .utf8))?
                    .trimmingCharacters(in: .whitespacesAndNewlines) ?? "") { kill(pid, SIGTERM) }
            case .none: break
            }
        }
        if finished.wait(timeout: .now() + 20) == .timedOut {
            kill(process.processIdentifier, SIGKILL)
            finished.wait()
            XCTFail("slurm.sbatch did not finish: \((try? String(contentsOf: log, encoding: .utf8)) ?? "")")
        }
        return (process.terminationStatus, (try? String(contentsOf: log, encoding: .utf8)) ?? "")
    }

    func testTimeLimitWarningSignalsTheStepsThenRequeuesWithResume() throws {
        let (status, log) = try runBatch(["train-autoencoder", "--config", "Configs/a b.yaml"], signal: .timeLimitWarning)
        XCTAssertEqual(status, 0, log)
        XCTAssertEqual(log.split(separator: "\n").map(String.init), [
            "srun --mpi=pmix --kill-on-bad-exit=1",
            "ldm 'train-autoencoder' '--config' 'Configs/a b.yaml' '--resume' 'latest' threads=3/3 srun_cpus=3",
            "scancel --signal=TERM 42",
            "ldm checkpointed",
            "scontrol requeue 42",
        ])
    }

    func testWarningAfterSlurmHasRequeuedDoesNotRequeueAgain() throws {
        let (status, log) = try runBatch(["train-autoencoder"], signal: .timeLimitWarning, state: "PENDING")
        XCTAssertEqual(status, 0, log)
        XCTAssertTrue(log.contains("ldm checkpointed"), log)
        XCTAssertFalse(log.contains("scontrol"), log)
    }

    func testScancelCheckpointsAndIsNeverRequeued() throws {
        let (status, log) = try runBatch(["train-ldm", "--resume", "Checkpoints/x"], signal: .none)
        XCTAssertEqual(status, 4, "without a signal the ranks' status is the job's")
        XCTAssertTrue(log.contains("ldm 'train-ldm' '--resume' 'Checkpoints/x' threads=3/3"), "an explicit --resume is kept: \(log)")
        XCTAssertFalse(log.contains("latest"), log)
        try FileManager.default.removeItem(at: self.log)
        try FileManager.default.removeItem(at: started)

        // Whatever time is left: a SIGTERM is a cancel (or preemption), never the warning.
        let (cancelled, cancelLog) = try runBatch(["train-autoencoder"], signal: .scancel)
        XCTAssertEqual(cancelled, 0, cancelLog)
        XCTAssertTrue(cancelLog.contains("ldm checkpointed"), cancelLog)
        XCTAssertFalse(cancelLog.contains("scontrol"), "scancel must not requeue: \(cancelLog)")
        XCTAssertFalse(cancelLog.contains("scancel --signal"), cancelLog)
    }

    func testOtherSubcommandsGetNoResume() throws {
        let (status, log) = try runBatch(["sample", "--config", "c.yaml"], signal: .none)
        XCTAssertEqual(status, 4)
        XCTAssertTrue(log.contains("ldm 'sample' '--config' 'c.yaml' threads=3/3"), log)
    }
}

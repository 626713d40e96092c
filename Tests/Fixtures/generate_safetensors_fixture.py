"""Safetensors interoperability fixtures for Tests/CheckpointTests (run with python3).

Writes, with the Python `safetensors` package:
  python_mixed.safetensors         F32, F16, BF16, F64 and I64 tensors plus metadata; the
  python_mixed.expected.json       exact Float32 bit patterns torch gets when reading them.
  python_reference_{f32,f16,bf16}.safetensors
                                   single-dtype files with one metadata key: our writer must
                                   reproduce them byte for byte (SafeTensorsInteropTests).

Then checks the other direction: swift_written_{f32,f16,bf16}.safetensors (written by our
writer; regenerate with REGENERATE_CHECKPOINT_FIXTURES=1 swift test ... --filter
SafeTensorsInteropTests) must load in Python with the right metadata, and the F16/BF16 files
must hold exactly torch's round-to-nearest-even conversion of the F32 file.

CI never runs this; the outputs are committed. (python_mixed.safetensors changes bytes between
runs because the reference writer emits its two metadata keys in hash-map order; its content
does not change.)
"""
import json
import pathlib
import sys

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

OUT = pathlib.Path(__file__).resolve().parent.parent / "CheckpointTests" / "Fixtures"


def bits(t: torch.Tensor) -> list:
    return t.detach().to(torch.float32).contiguous().view(torch.int32).flatten().tolist()


def write_python_fixtures() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    g = torch.Generator().manual_seed(0)
    mixed = {
        "encoder.conv.weight": torch.randn(2, 3, 2, 2, generator=g),
        "encoder.conv.bias": torch.tensor([0.5, -1.25, 3.0]),
        "half.values": torch.tensor(
            [0.0, -0.0, 1.0, -2.5, 65504.0, 6.103515625e-05, 5.960464477539063e-08, 0.1, float("inf"), float("-inf")],
            dtype=torch.float16,
        ),
        "half.matrix": torch.randn(3, 4, generator=g).to(torch.float16),
        "brain.values": torch.tensor([1.0, -3.140625, 1e30, -1e-30, 0.1, float("inf")], dtype=torch.bfloat16),
        "double.values": torch.tensor([1.0 / 3.0, -2.0e10, 1e-40], dtype=torch.float64),
        "scalar": torch.tensor(7.25),
        "empty": torch.zeros(0, 4),
        "step": torch.tensor([12345], dtype=torch.int64),
    }
    metadata = {"format": "pt", "note": "fixture from generate_safetensors_fixture.py"}
    save_file(mixed, OUT / "python_mixed.safetensors", metadata=metadata)

    expected = {
        "metadata": metadata,
        "tensors": {
            name: {
                "dtype": str(t.dtype).replace("torch.", ""),
                "shape": list(t.shape),
                "float32_bits": None if t.dtype == torch.int64 else bits(t),
            }
            for name, t in mixed.items()
        },
    }
    (OUT / "python_mixed.expected.json").write_text(json.dumps(expected, indent=1, sort_keys=True) + "\n")

    g = torch.Generator().manual_seed(1)
    reference = {
        "down.0.weight": torch.randn(4, 3, generator=g),
        "down.0.bias": torch.randn(4, generator=g),
        "up.weight": torch.randn(2, 2, 3, generator=g) * 100,
        "scalar": torch.tensor(-0.75),
        "empty": torch.zeros(2, 0),
    }
    for suffix, dtype in [("f32", torch.float32), ("f16", torch.float16), ("bf16", torch.bfloat16)]:
        tensors = {name: t.to(dtype) for name, t in reference.items()}
        save_file(tensors, OUT / f"python_reference_{suffix}.safetensors", metadata={"step": "100"})


def check_swift_files() -> bool:
    paths = {s: OUT / f"swift_written_{s}.safetensors" for s in ("f32", "f16", "bf16")}
    missing = [str(p) for p in paths.values() if not p.exists()]
    if missing:
        print("skipping the Swift → Python check, missing:", ", ".join(missing))
        return True
    loaded = {s: load_file(p) for s, p in paths.items()}
    ok = True
    for s, p in paths.items():
        with safe_open(p, framework="pt") as f:
            meta = f.metadata()
        if meta != {"producer": "swift-test", "purpose": "interop"}:
            print(f"{p.name}: unexpected metadata {meta}")
            ok = False
    f32 = loaded["f32"]
    for s, dtype in [("f16", torch.float16), ("bf16", torch.bfloat16)]:
        if set(loaded[s]) != set(f32):
            print(f"{s}: names differ: {sorted(loaded[s])} vs {sorted(f32)}")
            ok = False
            continue
        for name, source in f32.items():
            got = loaded[s][name]
            want = source.to(dtype)
            if got.dtype != dtype or got.shape != want.shape or not torch.equal(got.view(torch.int16), want.view(torch.int16)):
                diff = (got.view(torch.int16).flatten() != want.view(torch.int16).flatten()).nonzero().flatten().tolist()[:5]
                print(f"{s}/{name}: differs from torch's conversion at {diff}")
                ok = False
    count = sum(t.numel() for t in f32.values())
    print(f"Swift → Python: {len(f32)} tensors, {count} values; F16 and BF16 bit-identical to torch: {ok}")
    return ok


if __name__ == "__main__":
    write_python_fixtures()
    sys.exit(0 if check_swift_files() else 1)

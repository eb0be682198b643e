"""The two EA benchmark settings of issue 3, shared by every backend's benchmark file.

- **a**: 1000 elements in 32 sets, 64 -> 64, potential hidden [256, 256], T = 5;
- **b**: MOLPCBA-like, 256 sets of 16..36 elements (6770 in all, mean 26.4), 300 -> 300,
  hidden [600, 300, 32], T = 15.
"""

import numpy as np

SETTINGS = {
    "a": dict(num_sets=32, num_elements=1000, dim=64, hidden=(256, 256), num_steps=5,
              rounds=10),
    "b": dict(num_sets=256, sizes=(16, 36), dim=300, hidden=(600, 300, 32), num_steps=15,
              rounds=3),
}


def ea_inputs(setting):
    """``(x [E, dim] float32, index [E] int64 sorted by set, num_sets)`` as NumPy, seed 0."""
    cfg = SETTINGS[setting]
    rng = np.random.default_rng(0)
    if "sizes" in cfg:
        sizes = rng.integers(cfg["sizes"][0], cfg["sizes"][1] + 1, cfg["num_sets"])
        index = np.repeat(np.arange(cfg["num_sets"]), sizes)
    else:
        index = np.sort(rng.integers(0, cfg["num_sets"], cfg["num_elements"]))
    x = rng.normal(size=(len(index), cfg["dim"])).astype(np.float32)
    return x, index.astype(np.int64), cfg["num_sets"]

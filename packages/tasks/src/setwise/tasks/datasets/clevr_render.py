"""A synthetic CLEVR-like scene renderer in NumPy, writing the official CLEVR v1.0 layout.

CLEVR itself (18 GB) is not available everywhere; this draws scenes with CLEVR's rules and
vocabulary (3 to 10 objects; shapes cube / sphere / cylinder; 8 colours with CLEVR's RGB
values; rubber / metal; large 0.7 / small 0.35, cubes scaled by 1/sqrt(2); positions in
``[-3, 3]^2`` at least 0.25 apart and 0.4 apart along the cardinal directions; a camera near
CLEVR's with the same jitter), and paints them with a pinhole camera (35 mm lens on a 32 mm
sensor, 480x320), flat Lambert shading, a specular highlight for metal, and soft ground
shadows. No ray tracing: the images only resemble CLEVR.

The scenes JSON carries the fields DSPN reads (``3d_coords``, ``pixel_coords``, attributes,
``directions``) plus CLEVR's ``rotation`` and ``relationships``, and ``info.synthetic = true``
so that every result computed on it is labelled synthetic.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from setwise.tasks.datasets import files
from setwise.tasks.datasets.clevr import ROOT, SPLITS, images_dir, scenes_path

COLORS = {"gray": (87, 87, 87), "red": (173, 35, 35), "blue": (42, 75, 215),
          "green": (29, 105, 20), "brown": (129, 74, 25), "purple": (129, 38, 192),
          "cyan": (41, 208, 208), "yellow": (255, 238, 51)}
SIZES = {"large": 0.7, "small": 0.35}
SHAPES = ("cube", "sphere", "cylinder")
MATERIALS = ("rubber", "metal")
WIDTH, HEIGHT = 480, 320
CAMERA = np.array([7.358891, -6.925791, 4.958309])
CAMERA_JITTER, MIN_DIST, MARGIN = 0.5, 0.25, 0.4
FOCAL = 35.0 / 32.0 * WIDTH
MIN_OBJECTS, MAX_OBJECTS = 3, 10


class Camera:
    """Pinhole camera with CLEVR's base orientation (looking at the origin)."""

    def __init__(self, location: np.ndarray):
        self.location = np.asarray(location, float)
        forward = -CAMERA / np.linalg.norm(CAMERA)
        self.right = np.cross(forward, [0.0, 0.0, 1.0])
        self.right /= np.linalg.norm(self.right)
        self.up = np.cross(self.right, forward)
        self.forward = forward

    def project(self, points: np.ndarray) -> np.ndarray:
        """``[n, 3]`` world points -> ``[n, 3]`` (pixel x, pixel y, depth)."""
        d = np.asarray(points, float) - self.location
        depth = d @ self.forward
        return np.stack([WIDTH / 2 + FOCAL * (d @ self.right) / depth,
                         HEIGHT / 2 - FOCAL * (d @ self.up) / depth, depth], axis=1)

    def directions(self) -> dict:
        """CLEVR's ``directions``: camera axes projected on the ground plane."""
        behind = np.array([self.forward[0], self.forward[1], 0.0])
        behind /= np.linalg.norm(behind)
        left = -np.array([self.right[0], self.right[1], 0.0])
        left /= np.linalg.norm(left)
        vectors = {"behind": behind, "front": -behind, "left": left, "right": -left,
                   "above": np.array([0.0, 0.0, 1.0]), "below": np.array([0.0, 0.0, -1.0])}
        return {name: [float(v) for v in vec] for name, vec in vectors.items()}


def sample_objects(rng: np.random.Generator, directions: dict) -> list[dict]:
    """CLEVR's placement rules; restarts the scene after 50 failed tries for one object."""
    while True:
        objects = []
        for _ in range(int(rng.integers(MIN_OBJECTS, MAX_OBJECTS + 1))):
            placed = _place(rng, objects, directions)
            if placed is None:
                break
            objects.append(placed)
        else:
            return objects


def _place(rng, objects, directions):
    size = str(rng.choice(list(SIZES)))
    shape = str(rng.choice(SHAPES))
    r = SIZES[size] / (np.sqrt(2) if shape == "cube" else 1.0)
    for _ in range(50):
        x, y = rng.uniform(-3, 3, size=2)
        if all(_apart(x, y, r, other, directions) for other in objects):
            return {"shape": shape, "size": size, "color": str(rng.choice(list(COLORS))),
                    "material": str(rng.choice(MATERIALS)),
                    "rotation": float(rng.uniform(0, 360)),
                    "3d_coords": [float(x), float(y), float(r)]}
    return None


def _apart(x, y, r, other, directions) -> bool:
    ox, oy, orad = other["3d_coords"]
    dx, dy = x - ox, y - oy
    if np.hypot(dx, dy) - r - orad < MIN_DIST:
        return False
    for name in ("left", "right", "front", "behind"):
        vec = directions[name]
        if 0 < dx * vec[0] + dy * vec[1] < MARGIN:
            return False
    return True


def relationships(objects: list[dict], directions: dict, eps: float = 0.2) -> dict:
    """CLEVR's spatial relationships: for each object, the objects beyond it by ``eps``."""
    coords = np.array([o["3d_coords"] for o in objects])
    out = {}
    for name in ("left", "right", "front", "behind"):
        proj = coords @ np.asarray(directions[name])
        out[name] = [[j for j in range(len(objects)) if j != i and proj[j] - proj[i] > eps]
                     for i in range(len(objects))]
    return out


def _fill(image, polygon, color_fn):
    """Paint the convex ``polygon [k, 2]`` (pixel coords); ``color_fn(xs, ys) -> [m, 3]``."""
    hull = _convex_hull(polygon)
    x0, y0 = np.maximum(np.floor(hull.min(0)).astype(int), 0)
    x1 = min(int(np.ceil(hull[:, 0].max())), WIDTH - 1)
    y1 = min(int(np.ceil(hull[:, 1].max())), HEIGHT - 1)
    if x1 < x0 or y1 < y0:
        return
    ys, xs = np.mgrid[y0:y1 + 1, x0:x1 + 1]
    px, py = xs.ravel() + 0.5, ys.ravel() + 0.5
    inside = np.ones(px.shape, bool)
    for (ax, ay), (bx, by) in zip(hull, np.roll(hull, -1, axis=0)):
        inside &= (bx - ax) * (py - ay) - (by - ay) * (px - ax) >= 0
    if inside.any():
        image[ys.ravel()[inside], xs.ravel()[inside]] = color_fn(px[inside], py[inside])


def _convex_hull(points: np.ndarray) -> np.ndarray:
    """Andrew's monotone chain; vertices counter-clockwise in image coordinates."""
    pts = sorted(map(tuple, np.asarray(points, float)))

    def half(seq):
        out = []
        for p in seq:
            while len(out) >= 2 and ((out[-1][0] - out[-2][0]) * (p[1] - out[-2][1])
                                     - (out[-1][1] - out[-2][1]) * (p[0] - out[-2][0])) <= 0:
                out.pop()
            out.append(p)
        return out

    lower, upper = half(pts), half(reversed(pts))
    return np.array(lower[:-1] + upper[:-1])


class Painter:
    """Flat shading of CLEVR's three shapes onto one image."""

    def __init__(self, camera: Camera):
        self.camera = camera
        light = -0.5 * camera.right + 0.3 * camera.forward * np.array([1, 1, 0]) + [0, 0, 1.0]
        self.light = light / np.linalg.norm(light)
        half = self.light - camera.forward
        self.half = half / np.linalg.norm(half)

    def shade(self, normals: np.ndarray, obj: dict) -> np.ndarray:
        """``[m, 3]`` world normals -> ``[m, 3]`` RGB in ``[0, 1]``."""
        base = np.asarray(COLORS[obj["color"]], float) / 255
        lambert = np.clip(normals @ self.light, 0, 1)[:, None]
        if obj["material"] == "metal":
            spec = np.clip(normals @ self.half, 0, 1)[:, None] ** 30
            return np.clip(base * (0.2 + 0.7 * lambert) + 0.8 * spec, 0, 1)
        return base * (0.35 + 0.65 * lambert)

    def shadow(self, image, obj):
        x, y, r = obj["3d_coords"]
        offset = -self.light[:2] / self.light[2] * r
        angles = np.linspace(0, 2 * np.pi, 24, endpoint=False)
        ring = np.stack([x + offset[0] + 1.1 * r * np.cos(angles),
                         y + offset[1] + 1.1 * r * np.sin(angles), np.zeros(24)], axis=1)
        region = self.camera.project(ring)[:, :2]
        _fill(image, region, lambda px, py: image[py.astype(int), px.astype(int)] * 0.75)

    def sphere(self, image, obj):
        center = np.asarray(obj["3d_coords"], float)
        cx, cy, depth = self.camera.project(center[None])[0]
        radius = FOCAL * center[2] / depth
        angles = np.linspace(0, 2 * np.pi, 40, endpoint=False)
        disk = np.stack([cx + radius * np.cos(angles), cy + radius * np.sin(angles)], axis=1)

        def color(px, py):
            nx, ny = (px - cx) / radius, -(py - cy) / radius
            nz = np.sqrt(np.clip(1 - nx ** 2 - ny ** 2, 0, 1))
            normals = (nx[:, None] * self.camera.right + ny[:, None] * self.camera.up
                       - nz[:, None] * self.camera.forward)
            return self.shade(normals, obj)

        _fill(image, disk, color)

    def cube(self, image, obj):
        center = np.asarray(obj["3d_coords"], float)
        r = center[2]
        theta = np.deg2rad(obj["rotation"])
        axes = np.array([[np.cos(theta), np.sin(theta), 0], [-np.sin(theta), np.cos(theta), 0],
                         [0, 0, 1.0]])
        for axis in range(3):
            for sign in (-1, 1):
                normal = sign * axes[axis]
                face_center = center + r * normal
                if normal @ (self.camera.location - face_center) <= 0:
                    continue
                u, v = axes[(axis + 1) % 3], axes[(axis + 2) % 3]
                corners = [face_center + r * (a * u + b * v)
                           for a, b in ((-1, -1), (-1, 1), (1, 1), (1, -1))]
                rgb = self.shade(normal[None], obj)[0]
                _fill(image, self.camera.project(np.array(corners))[:, :2],
                      lambda px, py, rgb=rgb: np.tile(rgb, (len(px), 1)))

    def cylinder(self, image, obj):
        x, y, r = obj["3d_coords"]
        angles = np.linspace(0, 2 * np.pi, 32, endpoint=False)
        ring = np.stack([x + r * np.cos(angles), y + r * np.sin(angles)], axis=1)
        bottom = self.camera.project(np.column_stack([ring, np.zeros(32)]))
        top = self.camera.project(np.column_stack([ring, np.full(32, 2 * r)]))
        outline = np.concatenate([bottom, top])[:, :2]
        left, right = outline[:, 0].min(), outline[:, 0].max()
        side_axis = np.array([self.camera.right[0], self.camera.right[1], 0.0])
        side_axis /= np.linalg.norm(side_axis)
        toward = np.array([-self.camera.forward[0], -self.camera.forward[1], 0.0])
        toward /= np.linalg.norm(toward)

        def side(px, py):
            t = np.clip(2 * (px - left) / max(right - left, 1e-6) - 1, -1, 1)
            normals = t[:, None] * side_axis + np.sqrt(1 - t ** 2)[:, None] * toward
            return self.shade(normals, obj)

        _fill(image, outline, side)
        rgb = self.shade(np.array([[0.0, 0.0, 1.0]]), obj)[0]
        _fill(image, top[:, :2], lambda px, py: np.tile(rgb, (len(px), 1)))


def render_scene(rng: np.random.Generator, split: str, index: int):
    """One scene: ``(image [320, 480, 3] uint8, scene dict in CLEVR's format)``."""
    camera = Camera(CAMERA + rng.uniform(-CAMERA_JITTER, CAMERA_JITTER, size=3))
    directions = camera.directions()
    objects = sample_objects(rng, directions)
    rows = np.linspace(0.56, 0.44, HEIGHT)[:, None, None]
    image = np.broadcast_to(rows, (HEIGHT, WIDTH, 3)).copy()
    painter = Painter(camera)
    for obj in objects:
        painter.shadow(image, obj)
    pixels = camera.project(np.array([o["3d_coords"] for o in objects]))
    for k in np.argsort(-pixels[:, 2]):
        getattr(painter, objects[k]["shape"])(image, objects[k])
    for obj, (px, py, depth) in zip(objects, pixels):
        obj["pixel_coords"] = [int(round(px)), int(round(py)), float(depth)]
    scene = {"split": split, "image_index": index,
             "image_filename": f"CLEVR_{split}_{index:06d}.png", "objects": objects,
             "directions": directions, "relationships": relationships(objects, directions)}
    return (np.clip(image, 0, 1) * 255).round().astype(np.uint8), scene


def write_clevr(out_dir, num_train: int = 1000, num_val: int = 200, seed: int = 0,
                progress: bool = True) -> Path:
    """Render a synthetic dataset as ``<out_dir>/CLEVR_v1.0/{images,scenes}``; return its root.

    Image ``i`` of a split depends only on ``(seed, split, i)``.
    """
    from PIL import Image

    root = Path(out_dir) / ROOT
    for split, count in zip(SPLITS, (num_train, num_val)):
        folder = images_dir(root, split)
        folder.mkdir(parents=True, exist_ok=True)
        scenes = []
        for index in files.progress(range(count), count, f"render synthetic {split}", progress):
            rng = np.random.default_rng([seed, SPLITS.index(split), index])
            image, scene = render_scene(rng, split, index)
            with files.atomic_path(folder / scene["image_filename"]) as tmp:
                Image.fromarray(image).save(tmp, format="PNG")
            scenes.append(scene)
        info = {"split": split, "version": "1.0", "synthetic": True, "seed": seed,
                "generator": "setwise.tasks.datasets.clevr_render (NumPy, not CLEVR)",
                "license": "generated"}
        with files.atomic_path(scenes_path(root, split)) as tmp:
            tmp.write_text(json.dumps({"info": info, "scenes": scenes}))
    return root


def synthetic_root(cache_dir=None, num_train: int = 1000, num_val: int = 200, seed: int = 0,
                   progress: bool = True) -> Path:
    """The synthetic CLEVR folder in the cache, rendered on first use."""
    base = files.cache_dir(cache_dir) / "clevr_synthetic" / f"seed{seed}_{num_train}_{num_val}"
    root = base / ROOT
    if not all(scenes_path(root, split).exists() for split in SPLITS):
        write_clevr(base, num_train, num_val, seed, progress)
    return root

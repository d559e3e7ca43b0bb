"""SynthCity: a procedural street-scene dataset in the Cityscapes (or ADE20K) layout, the suite's embedded default.

A scene is a road in perspective towards a vanishing point, with lane marks and zebra crossings; tiled sidewalks;
facades along both sides (buildings with window grids, windowless walls, fences, hedges) over terrain; a far
skyline and a cloudy sky; trees; poles carrying traffic signs and lights; cars, trucks, buses, trams, persons,
riders on bicycles and motorcycles, parked bicycles and motorcycles, and bins (Cityscapes ``static``, ignored).
Classes share colour ranges and differ by texture and shape (road vs sidewalk: grain vs slab tiling; building vs
wall: windows; vegetation vs terrain: leaf clumps vs fine grass), thin objects are drawn down to one pixel, and
each image gets random global lighting, a colour tint, a gradient and cast shadows.

Every image draws from its own generator seeded by ``(seed, split, index)``, so the output is byte-identical for
the same arguments whatever the number of worker processes.
"""

from __future__ import annotations

import dataclasses
import io
import multiprocessing
import os
import shutil
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from repsep.data.labels import LABELID_TO_TRAINID
from repsep.errors import UserError
from repsep.io import atomic_write_json, dumps_json, temp_sibling_dir

GENERATOR_VERSION = "1"
META_FILE = "synthcity_meta.json"
SPLITS = ("train", "val")
LAYOUTS = ("cityscapes", "ade20k")
CITY = "synthville"

# Cityscapes labelIds used by the scene grammar.
UNLABELED, STATIC, ROAD, SIDEWALK, BUILDING, WALL, FENCE = 0, 4, 7, 8, 11, 12, 13
POLE, LIGHT, SIGN, VEGETATION, TERRAIN, SKY = 17, 19, 20, 21, 22, 23
PERSON, RIDER, CAR, TRUCK, BUS, TRAIN, MOTORCYCLE, BICYCLE = 24, 25, 26, 27, 28, 31, 32, 33

# labelId -> ADE20K annotation value (0 = other, k = ADE class k - 1).
LABELID_TO_ADE = np.zeros(256, dtype=np.uint8)
for _cs, _ade in {ROAD: 7, SIDEWALK: 12, BUILDING: 2, WALL: 1, FENCE: 33, POLE: 94, LIGHT: 137, SIGN: 44,
                  VEGETATION: 5, TERRAIN: 10, SKY: 3, PERSON: 13, RIDER: 13, CAR: 21, TRUCK: 84, BUS: 81,
                  MOTORCYCLE: 117, BICYCLE: 128}.items():
    LABELID_TO_ADE[_cs] = _ade


@dataclass(frozen=True)
class SceneKnobs:
    """Difficulty knobs of the generator (defaults give the standard SynthCity).

    Args:
        texture_contrast: amplitude of the textures that tell classes apart (0 = flat colours, 2 = strong).
        object_density: multiplies the expected number of objects per image.
        thin_share: share of thin objects (poles, signs, lights, persons, two-wheelers) versus bulky vehicles;
            0.5 is balanced, 1.0 draws no cars/trucks/buses.
        lighting_range: spread of the random lighting (global gain, tint, gradient, shadow depth), 0 = fixed light.
    """

    texture_contrast: float = 1.0
    object_density: float = 1.0
    thin_share: float = 0.5
    lighting_range: float = 0.35

    def __post_init__(self) -> None:
        checks = {"texture_contrast": (0.0, 4.0), "object_density": (0.0, 5.0), "thin_share": (0.0, 1.0),
                  "lighting_range": (0.0, 0.9)}
        for name, (lo, hi) in checks.items():
            value = getattr(self, name)
            if not lo <= value <= hi:
                raise UserError(f"--{name.replace('_', '-')} {value}: must lie in [{lo}, {hi}]")


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cell: float) -> np.ndarray:
    """Unit-variance-ish value noise float32 [h, w] with features about ``cell`` pixels wide."""
    small = rng.standard_normal((max(int(h / cell), 1) + 2, max(int(w / cell), 1) + 2), dtype=np.float32)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)


def _hash01(a: np.ndarray, b: np.ndarray, salt: int) -> np.ndarray:
    """Deterministic pseudo-random float32 in [0, 1) per integer cell (a, b)."""
    h = (a.astype(np.int64) * 73856093) ^ (b.astype(np.int64) * 19349663) ^ (salt * 83492791)
    h = ((h ^ (h >> 13)) * 1274126177) & 0xFFFFFF
    return (h.astype(np.float32) / np.float32(0x1000000))


def _frac(x: np.ndarray) -> np.ndarray:
    return x - np.floor(x)


class _Scene:
    """One image being drawn: a labelId map and a float RGB canvas, painted back to front."""

    def __init__(self, rng: np.random.Generator, height: int, width: int, knobs: SceneKnobs) -> None:
        self.rng, self.h, self.w, self.k = rng, height, width, knobs
        self.tc = knobs.texture_contrast
        self.label = np.full((height, width), UNLABELED, dtype=np.uint8)
        self.img = np.zeros((height, width, 3), dtype=np.float32)
        self.grain = rng.standard_normal((height, width), dtype=np.float32)
        self.leaf = _smooth_noise(rng, height, width, 2.5)
        self.mid = _smooth_noise(rng, height, width, 7)
        self.coarse = _smooth_noise(rng, height, width, 40)
        self.yy = np.arange(height, dtype=np.float32)[:, None] + 0.5
        self.xx = np.arange(width, dtype=np.float32)[None, :] + 0.5
        self.yh = rng.uniform(0.36, 0.5) * height  # horizon row
        self.xv = rng.uniform(0.35, 0.65) * width  # vanishing point column
        self.depth_rows = height - self.yh  # d at the bottom row

    # ---- geometry ------------------------------------------------------------------------------------------
    def ground(self, lateral: float, d: float) -> tuple[float, float, float]:
        """Image (x, y) of the ground point at world lateral ``lateral`` and ``d`` rows below the horizon, and the
        scale in pixels per world unit (one unit = the image width at the bottom row)."""
        s = d * self.w / self.depth_rows
        return self.xv + lateral * s, self.yh + d, s

    def box(self, x0: float, y0: float, x1: float, y1: float):
        """Clipped slices of a float box and its pixel-centre coordinates (Y [h, 1], X [1, w]); None if empty."""
        iy0, iy1 = max(int(np.floor(y0)), 0), min(int(np.ceil(y1)), self.h)
        ix0, ix1 = max(int(np.floor(x0)), 0), min(int(np.ceil(x1)), self.w)
        if iy0 >= iy1 or ix0 >= ix1:
            return None
        return (slice(iy0, iy1), slice(ix0, ix1)), self.yy[iy0:iy1], self.xx[:, ix0:ix1]

    # ---- painting ------------------------------------------------------------------------------------------
    def put(self, sl, mask: np.ndarray, label_id: int, color: np.ndarray) -> None:
        """Paint ``mask`` (bool, the shape of the slice) with a label and a colour (RGB or a per-pixel field)."""
        lab, img = self.label[sl], self.img[sl]
        mask = np.broadcast_to(mask, lab.shape)
        lab[mask] = label_id
        img[mask] = color if color.ndim == 1 else np.broadcast_to(color, img.shape)[mask]

    def shade(self, sl, rgb, *fields: tuple[np.ndarray, float]) -> np.ndarray:
        """``rgb`` modulated by ``1 + sum(amp * tc * field[sl])``: a float [h, w, 3] colour field."""
        mod = 1.0
        for field, amp in fields:
            mod = mod + (amp * self.tc) * field[sl]
        return np.asarray(rgb, np.float32) * np.asarray(mod, np.float32)[..., None]

    def color(self, lo: tuple, hi: tuple) -> np.ndarray:
        return self.rng.uniform(lo, hi).astype(np.float32)

    def grey(self, lo: float, hi: float, tint: float = 8.0) -> np.ndarray:
        return (self.rng.uniform(lo, hi) + self.rng.uniform(-tint, tint, 3)).astype(np.float32)

    # ---- background ----------------------------------------------------------------------------------------
    def draw_sky(self) -> None:
        sl = (slice(None), slice(None))
        t = np.clip(self.yy / max(self.yh, 1.0), 0, 1)[..., None]
        overcast = self.rng.random() < 0.3
        top = self.grey(150, 200, 4) if overcast else self.color((40, 90, 160), (110, 160, 230))
        low = top + self.rng.uniform(30, 60)
        sky = top * (1 - t) + low * t
        cloud = np.clip(self.coarse * 0.6 + 0.8 * self.mid * 0.3 - self.rng.uniform(0.0, 0.8), 0, 1)[..., None]
        sky = sky * (1 - 0.7 * cloud) + np.float32(235) * 0.7 * cloud
        self.put(sl, np.ones((self.h, self.w), bool), SKY, sky)

    def draw_skyline(self) -> None:
        x = 0.0
        x_end = float(self.w)
        while x < x_end:
            bw = self.rng.uniform(0.03, 0.12) * self.w
            bh = self.rng.uniform(0.02, 0.15) * self.h
            if self.rng.random() < 0.8:
                b = self.box(x, self.yh - bh, x + bw, self.yh + 2)
                if b is not None:
                    sl, yy, xx = b
                    rgb = self.grey(80, 170)
                    stripes = (_frac(xx / 3.0) < 0.4) & (_frac(yy / 4.0) < 0.5) & (yy < self.yh - 2)
                    col = self.shade(sl, rgb, (self.grain, 0.05)) * np.where(stripes, 0.75, 1.0)[..., None]
                    self.put(sl, np.ones(col.shape[:2], bool), BUILDING, col)
            x += bw

    def setup_street(self) -> None:
        rng = self.rng
        self.road_l = -rng.uniform(0.22, 0.5)
        self.road_r = rng.uniform(0.22, 0.5)
        self.side_l = self.road_l - rng.uniform(0.1, 0.3)
        self.side_r = self.road_r + rng.uniform(0.1, 0.3)
        self.urban = (rng.random() < 0.8, rng.random() < 0.8)  # left, right side: facades or park

    def draw_ground(self) -> None:
        rows = slice(int(np.ceil(self.yh)), self.h)
        yy = self.yy[rows]
        d = np.maximum(yy - self.yh, 0.5)
        lateral = (self.xx - self.xv) / d * (self.depth_rows / self.w)  # [h, w]
        z = self.depth_rows / d  # depth, 1 at the bottom row, [h, 1]
        sl = (rows, slice(None))
        # terrain everywhere beyond the sidewalks (hidden by facades on urban sides)
        terrain_rgb = self.color((70, 85, 35), (125, 135, 80))
        streaks = cv2.resize(self.grain[::4], (self.w, self.h))
        terrain = self.shade(sl, terrain_rgb, (self.grain, 0.12), (streaks, 0.18), (self.coarse, 0.06))
        self.put(sl, np.ones(terrain.shape[:2], bool), TERRAIN, terrain)
        # sidewalks: slab tiling in perspective, per-slab brightness, curb stones at the road edge
        grey = self.rng.uniform(85, 150)
        side_rgb = grey + self.rng.uniform(-6, 6, 3)
        tile_w, tile_z = self.rng.uniform(0.03, 0.06), self.rng.uniform(1.5, 3.0)
        u, v = lateral / tile_w, z * tile_z
        joints = (_frac(u) < 0.08) | (_frac(v) < 0.08 * np.minimum(z, 6.0))
        slab = _hash01(np.floor(u), np.floor(v), 1) - 0.5
        sidewalk = self.shade(sl, side_rgb, (self.grain, 0.04)) * (
            1 + self.tc * (0.16 * slab - 0.22 * joints))[..., None]
        curb = ((lateral > self.side_l) & (lateral < self.road_l + 0.012)) | (
            (lateral < self.side_r) & (lateral > self.road_r - 0.012))
        curb_zone = (np.abs(lateral - self.road_l) < 0.012) | (np.abs(lateral - self.road_r) < 0.012)
        sidewalk = np.where(curb_zone[..., None], sidewalk * 1.15, sidewalk)
        self.put(sl, curb, SIDEWALK, sidewalk)
        # road: asphalt grain, patches, lane marks, sometimes a zebra crossing
        road_rgb = grey + self.rng.uniform(-15, 15) + self.rng.uniform(-4, 4, 3)
        road = self.shade(sl, road_rgb, (self.grain, 0.11), (self.mid, 0.05), (self.coarse, 0.05))
        centre = self.rng.uniform(self.road_l * 0.3, self.road_r * 0.3)
        dash = (np.abs(lateral - centre) < 0.006) & (_frac(z * 0.6) < 0.5)
        edges = (np.abs(lateral - self.road_l - 0.02) < 0.004) | (np.abs(lateral - self.road_r + 0.02) < 0.004)
        marks = dash | edges
        if self.rng.random() < 0.35:
            z0 = self.rng.uniform(1.2, 4.0)
            marks |= (z > z0) & (z < z0 + 0.5) & (_frac(lateral / 0.05) < 0.5)
        road = np.where(marks[..., None], np.float32(215) + 10 * self.grain[sl][..., None], road)
        self.put(sl, (lateral > self.road_l) & (lateral < self.road_r), ROAD, road)

    def draw_facades(self, side: int) -> None:
        """Facade segments along the sidewalk's outer line on the left (-1) or right (+1) side."""
        rng, urban = self.rng, self.urban[0 if side < 0 else 1]
        outer = abs(self.side_l if side < 0 else self.side_r)
        dx = (self.xx - self.xv) * side
        cols = dx > 0.5
        dg = np.where(cols, dx, 1.0) * self.depth_rows / (outer * self.w)  # ground-line depth per column [1, w]
        z = self.depth_rows / dg
        z_min = float(z[cols].min()) if cols.any() else 1.0
        bounds, z_cur = [], z_min * 0.5
        while z_cur < 300:
            bounds.append(z_cur)
            z_cur += rng.uniform(0.5, 2.5) * max(1.0, z_cur / 6)
        n = len(bounds)
        p = [0.6, 0.15, 0.1, 0.1, 0.05] if urban else [0.05, 0.15, 0.3, 0.3, 0.2]
        kind = rng.choice(5, size=n, p=p)  # building, wall, fence, hedge, gap
        height = np.select([kind == 0, kind == 1, kind == 2, kind == 3],
                           [rng.uniform(1.5, 6.0, n), rng.uniform(0.25, 0.9, n), rng.uniform(0.25, 0.5, n),
                            rng.uniform(0.3, 1.0, n)], 0.0).astype(np.float32)
        base = (rng.uniform(80, 190, (n, 1)) + rng.uniform(-12, 12, (n, 3)) * np.array([1.0, 0.9, 0.7])).astype(
            np.float32)
        seg = np.clip(np.searchsorted(np.asarray(bounds), z) - 1, 0, n - 1)  # [1, w]
        kind_c, height_c, base_c = kind[seg], height[seg], base[seg]
        v = 1 + (self.yh - self.yy) / dg  # height above ground in ground-depth units [h, w]
        inside = cols & (v >= 0) & (v <= height_c)
        sl = (slice(None), slice(None))
        # buildings: fine grain, window grid in perspective (hidden once the period is below 3 px)
        kz, kv = rng.uniform(2.0, 4.0, n)[seg], rng.uniform(2.0, 3.5, n)[seg]
        u = (z - np.asarray(bounds)[seg]) * kz
        period_px = outer * self.w / (z * z * kz)
        windows = ((_frac(u) > 0.25) & (_frac(u) < 0.75) & (_frac(v * kv) > 0.3) & (_frac(v * kv) < 0.8)
                   & (v > 0.35) & (v < height_c - 0.2) & (period_px > 3))
        facade = base_c * (1 + self.tc * 0.05 * self.grain)[..., None]
        glass = np.float32(45) + 40 * np.clip(1 - v / np.maximum(height_c, 0.1), 0, 1)[..., None] * np.float32(
            [0.6, 0.8, 1.0])
        self.put(sl, inside & (kind_c == 0), BUILDING, np.where(windows[..., None], glass, facade))
        # walls: the same materials without windows, stained plaster and panel joints
        wall = base_c * (1 + self.tc * (0.1 * self.mid + 0.04 * self.grain
                                                 - 0.15 * (_frac(u * 0.5) < 0.04)))[..., None]
        self.put(sl, inside & (kind_c == 1), WALL, wall)
        # fences: posts and rails over a see-through mesh
        lattice = (_frac(u * 2) < 0.15) | (_frac(v * 6) < 0.2) | ((_frac(u * 12 + v * 12) < 0.3) & (period_px > 6))
        fence_rgb = np.float32([1.0, 0.95, 0.9]) * rng.uniform(60, 170)
        fence = np.where(lattice[..., None], fence_rgb, 0.6 * self.img + 0.4 * fence_rgb)
        self.put(sl, inside & (kind_c == 2), FENCE, fence)
        self.put(sl, inside & (kind_c == 3), VEGETATION, self.foliage(sl))

    def foliage(self, sl) -> np.ndarray:
        """Leaf texture: high-contrast clumps of light and dark green."""
        rgb = self.color((45, 75, 20), (110, 135, 70))
        clumps = np.tanh(2.5 * self.leaf[sl]) * 0.35 + 0.12 * self.mid[sl]
        return rgb * (1 + self.tc * clumps)[..., None]

    # ---- objects -------------------------------------------------------------------------------------------
    def rect(self, x0, y0, x1, y1, label_id, rgb, *fields) -> None:
        b = self.box(x0, y0, x1, y1)
        if b is not None:
            sl, yy, xx = b
            mask = (yy >= y0) & (yy < y1) & (xx >= x0) & (xx < x1)
            self.put(sl, mask, label_id, self.shade(sl, rgb, *fields) if fields else rgb)

    def ellipse(self, cx, cy, rx, ry, label_id, rgb, *fields, jitter: float = 0.0, inner: float = 0.0) -> None:
        b = self.box(cx - rx * (1 + jitter), cy - ry * (1 + jitter), cx + rx * (1 + jitter), cy + ry * (1 + jitter))
        if b is not None:
            sl, yy, xx = b
            r = ((xx - cx) / max(rx, 0.5)) ** 2 + ((yy - cy) / max(ry, 0.5)) ** 2
            lim = 1 + jitter * self.mid[sl] if jitter else 1.0
            mask = (r <= lim) & (r >= inner)
            self.put(sl, mask, label_id, self.shade(sl, rgb, *fields) if fields else rgb)

    def segment(self, x0, y0, x1, y1, width, label_id, rgb) -> None:
        """A thick line from (x0, y0) to (x1, y1), at least one pixel wide."""
        half = max(width / 2, 0.5)
        b = self.box(min(x0, x1) - half, min(y0, y1) - half, max(x0, x1) + half, max(y0, y1) + half)
        if b is not None:
            sl, yy, xx = b
            dx, dy = x1 - x0, y1 - y0
            t = np.clip(((xx - x0) * dx + (yy - y0) * dy) / max(dx * dx + dy * dy, 1e-6), 0, 1)
            dist = np.hypot(xx - x0 - t * dx, yy - y0 - t * dy)
            self.put(sl, dist <= half, label_id, rgb)

    def paint_color(self) -> np.ndarray:
        rng = self.rng
        if rng.random() < 0.35:
            return self.grey(20, 230, 5)
        return self.color((10, 10, 10), (230, 230, 230))

    def car(self, cx, gy, s, label_id=CAR, side_view=False) -> None:
        rng, paint = self.rng, self.paint_color()
        glass = self.grey(30, 70, 6) + np.float32([0, 5, 15])
        tyre = self.grey(15, 35, 2)
        if side_view:
            length, h = s * rng.uniform(0.36, 0.44), s * 0.13
            x0 = cx - length / 2
            self.rect(x0, gy - 0.62 * h, x0 + length, gy - 0.15 * h, label_id, paint, (self.grain, 0.04))
            self.rect(x0 + 0.22 * length, gy - h, x0 + 0.78 * length, gy - 0.6 * h, label_id, paint)
            for a, b in ((0.26, 0.49), (0.51, 0.74)):
                self.rect(x0 + a * length, gy - 0.93 * h, x0 + b * length, gy - 0.64 * h, label_id, glass)
            for wx in (0.2, 0.8):
                self.ellipse(x0 + wx * length, gy - 0.1 * h, 0.1 * h * 1.4, 0.1 * h * 1.4, label_id, tyre)
                self.ellipse(x0 + wx * length, gy - 0.1 * h, 0.05 * h * 1.4, 0.05 * h * 1.4, label_id,
                             self.grey(120, 180))
        else:
            w, h = s * rng.uniform(0.15, 0.19), s * rng.uniform(0.12, 0.15)
            self.rect(cx - 0.42 * w, gy - 0.12 * h, cx - 0.25 * w, gy, label_id, tyre)
            self.rect(cx + 0.25 * w, gy - 0.12 * h, cx + 0.42 * w, gy, label_id, tyre)
            self.rect(cx - w / 2, gy - 0.6 * h, cx + w / 2, gy - 0.1 * h, label_id, paint, (self.grain, 0.04))
            self.rect(cx - 0.4 * w, gy - h, cx + 0.4 * w, gy - 0.6 * h, label_id, paint)
            self.rect(cx - 0.34 * w, gy - 0.93 * h, cx + 0.34 * w, gy - 0.64 * h, label_id, glass)
            for sx in (-1, 1):
                self.rect(cx + sx * 0.45 * w - 0.05 * w, gy - 0.5 * h, cx + sx * 0.45 * w + 0.05 * w, gy - 0.4 * h,
                          label_id, np.float32([200, 30, 20]))

    def truck(self, cx, gy, s) -> None:
        rng = self.rng
        w, h = s * rng.uniform(0.2, 0.25), s * rng.uniform(0.26, 0.34)
        box_rgb = self.grey(150, 235, 6)
        tyre = self.grey(15, 35, 2)
        self.rect(cx - 0.42 * w, gy - 0.1 * h, cx - 0.22 * w, gy, TRUCK, tyre)
        self.rect(cx + 0.22 * w, gy - 0.1 * h, cx + 0.42 * w, gy, TRUCK, tyre)
        b = self.box(cx - w / 2, gy - h, cx + w / 2, gy - 0.1 * h)
        if b is not None:
            sl, yy, xx = b
            panels = _frac((xx - cx) / max(0.08 * w, 1.0)) < 0.12
            col = self.shade(sl, box_rgb, (self.grain, 0.03)) * np.where(panels, 0.8, 1.0)[..., None]
            self.put(sl, (yy >= gy - h) & (xx >= cx - w / 2), TRUCK, col)
        self.rect(cx - w / 2, gy - 0.2 * h, cx + w / 2, gy - 0.1 * h, TRUCK, self.grey(40, 80))

    def bus(self, cx, gy, s, label_id=BUS) -> None:
        rng = self.rng
        tram = label_id == TRAIN
        length = s * (rng.uniform(1.0, 1.5) if tram else rng.uniform(0.6, 0.95))
        h = s * (rng.uniform(0.3, 0.36) if tram else rng.uniform(0.28, 0.33))
        x0 = cx - length / 2
        paint = self.color((150, 20, 20), (250, 230, 90)) if not tram else self.color((150, 150, 150), (240, 240, 245))
        b = self.box(x0, gy - h, x0 + length, gy - 0.08 * h)
        if b is None:
            return
        sl, yy, xx = b
        u = (xx - x0) / length
        vv = (gy - yy) / h
        windows = (vv > 0.55) & (vv < 0.88) & (_frac(u * (9 if tram else 6)) > 0.12)
        stripe = (vv > 0.35) & (vv < 0.42)
        col = self.shade(sl, paint, (self.grain, 0.03))
        col = np.where(windows[..., None], self.grey(30, 60) + 25 * (vv[..., None] - 0.55), col)
        col = np.where(stripe[..., None], col * 0.55, col)
        self.put(sl, np.ones(col.shape[:2], bool), label_id, col)
        tyre = self.grey(15, 35, 2)
        for wx in ((0.12, 0.3, 0.7, 0.88) if tram else (0.15, 0.8)):
            self.ellipse(x0 + wx * length, gy - 0.08 * h, 0.07 * h, 0.07 * h, label_id, tyre)
        if tram:
            self.segment(x0 + 0.4 * length, gy - h, x0 + 0.5 * length, gy - 1.25 * h, max(0.01 * h, 1), TRAIN,
                         self.grey(30, 60))

    def person(self, cx, gy, s, label_id=PERSON, seated: bool = False) -> None:
        rng = self.rng
        hp = s * rng.uniform(0.15, 0.19)
        top = gy - hp
        shirt, trousers = self.paint_color(), self.paint_color() * 0.7
        skin = self.color((120, 80, 60), (235, 190, 160))
        stride = rng.uniform(-0.12, 0.12) * hp
        if not seated:
            for sgn in (-1, 1):
                self.segment(cx + sgn * 0.05 * hp, top + 0.52 * hp, cx + sgn * 0.05 * hp + sgn * stride, gy,
                             0.09 * hp, label_id, trousers)
        self.ellipse(cx, top + 0.36 * hp, 0.13 * hp, 0.2 * hp, label_id, shirt, (self.mid, 0.08))
        for sgn in (-1, 1):
            self.segment(cx + sgn * 0.13 * hp, top + 0.22 * hp, cx + sgn * 0.2 * hp, top + 0.5 * hp, 0.06 * hp,
                         label_id, shirt * 0.9)
        self.ellipse(cx, top + 0.08 * hp, 0.065 * hp, 0.08 * hp, label_id, skin)
        self.ellipse(cx, top + 0.04 * hp, 0.067 * hp, 0.05 * hp, label_id, self.grey(20, 90, 10))

    def two_wheeler(self, cx, gy, s, label_id, rider: bool) -> None:
        rng = self.rng
        r = s * rng.uniform(0.03, 0.038)
        base = cx - 0.06 * s, cx + 0.06 * s
        frame = self.paint_color()
        if label_id == BICYCLE:
            for wx in base:
                self.ellipse(wx, gy - r, r, r, label_id, self.grey(15, 40, 2), inner=0.72)
                self.segment(wx, gy - r, cx, gy - 1.6 * r, 0.008 * s, label_id, frame)
            self.segment(base[0], gy - r, base[0] + 0.02 * s, gy - 2.4 * r, 0.008 * s, label_id, frame)
            self.segment(base[1], gy - r, base[1] - 0.01 * s, gy - 2.5 * r, 0.008 * s, label_id, frame)
        else:
            for wx in base:
                self.ellipse(wx, gy - r, r, r, label_id, self.grey(15, 35, 2))
            self.ellipse(cx, gy - 1.7 * r, 0.08 * s, 0.9 * r, label_id, frame, (self.grain, 0.03))
        if rider:
            self.person(cx, gy - 1.2 * r, s * 0.9, RIDER, seated=True)
            self.segment(cx, gy - 1.2 * r - 0.05 * s, cx + 0.03 * s, gy - r, 0.018 * s, RIDER, self.grey(30, 90))

    def pole(self, cx, gy, s) -> None:
        rng = self.rng
        h = s * rng.uniform(0.45, 0.8)
        w = max(0.012 * s, 1.0)
        b = self.box(cx - w / 2, gy - h, cx + w / 2, gy)
        if b is not None:
            sl, yy, xx = b
            shading = 0.7 + 0.5 * np.cos(np.clip((xx - cx) / (w / 2 + 1e-3), -1, 1) * 1.3)
            col = self.grey(90, 170, 4)[None, None] * shading[..., None] * np.ones_like(yy)[..., None]
            self.put(sl, (yy >= gy - h) & (xx >= cx - w / 2) & (xx < cx + w / 2), POLE, col)
        attach = rng.random()
        if attach < 0.4:
            size = s * rng.uniform(0.04, 0.07)
            plate = [np.float32([200, 30, 30]), np.float32([30, 70, 180]), np.float32([235, 235, 235]),
                     np.float32([230, 190, 30])][rng.integers(4)]
            cy = gy - h + size
            if rng.random() < 0.5:
                self.ellipse(cx, cy, size / 2, size / 2, SIGN, np.float32([240, 240, 240]))
                self.ellipse(cx, cy, size * 0.4, size * 0.4, SIGN, plate)
            else:
                self.rect(cx - size / 2, cy - size / 2, cx + size / 2, cy + size / 2, SIGN, plate)
                self.rect(cx - size / 4, cy - size / 8, cx + size / 4, cy + size / 8, SIGN, np.float32([240] * 3))
        elif attach < 0.75:
            lw, lh = s * 0.028, s * 0.075
            top = gy - h
            self.rect(cx - lw / 2, top, cx + lw / 2, top + lh, LIGHT, self.grey(25, 50, 3), (self.grain, 0.05))
            lit = rng.integers(3)
            for i, on in enumerate(([255, 40, 30], [255, 190, 30], [40, 255, 120])):
                rgb = np.float32(on) if i == lit else np.float32(on) * 0.25
                self.ellipse(cx, top + lh * (0.2 + 0.3 * i), lw * 0.3, lw * 0.3, LIGHT, rgb)

    def tree(self, cx, gy, s) -> None:
        rng = self.rng
        h = s * rng.uniform(0.3, 0.5)
        self.rect(cx - max(0.012 * s, 0.5), gy - h, cx + max(0.012 * s, 0.5), gy, VEGETATION,
                  self.color((60, 40, 25), (110, 85, 60)), (self.grain, 0.1))
        rx, ry = s * rng.uniform(0.08, 0.16), s * rng.uniform(0.1, 0.2)
        cy = gy - h - 0.6 * ry
        b = self.box(cx - 1.5 * rx, cy - 1.5 * ry, cx + 1.5 * rx, cy + 1.5 * ry)
        if b is not None:
            sl, yy, xx = b
            r = ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2
            self.put(sl, r <= 1 + 0.4 * self.mid[sl], VEGETATION, self.foliage(sl))

    def bin(self, cx, gy, s) -> None:
        self.rect(cx - 0.025 * s, gy - 0.09 * s, cx + 0.025 * s, gy, STATIC, self.grey(30, 110, 20), (self.grain, 0.05))

    def draw_objects(self) -> None:
        rng, k = self.rng, self.k
        thin, bulky = 2 * k.thin_share, 2 * (1 - k.thin_share)
        counts = {"car": 4 * bulky, "truck": 0.6 * bulky, "bus": 0.5 * bulky, "train": 0.15 * bulky,
                  "person": 3 * thin, "cyclist": 1.0 * thin, "bicycle": 0.8 * thin, "motorcycle": 0.6 * thin,
                  "pole": 3.5 * thin, "tree": 3.0, "bin": 0.6}
        objects = []
        for kind, mean in counts.items():
            for _ in range(rng.poisson(mean * k.object_density)):
                near = 0.7 if kind in ("truck", "bus", "train") else 1.05  # big vehicles stay off the lens
                d = self.depth_rows * (0.05 + (near - 0.05) * rng.random() ** 1.5)
                if kind in ("car", "truck", "bus", "train", "cyclist"):
                    lateral = rng.uniform(self.road_l + 0.08, self.road_r - 0.08)
                elif kind == "person" and rng.random() < 0.25:
                    lateral = rng.uniform(self.road_l, self.road_r)
                else:
                    left = rng.random() < 0.5
                    lo, hi = (self.side_l, self.road_l) if left else (self.road_r, self.side_r)
                    lateral = rng.uniform(lo + 0.02, hi - 0.02) if hi - lo > 0.05 else (lo + hi) / 2
                objects.append((d, kind, lateral, rng.random()))
        objects.sort(key=lambda o: (o[0], o[1]))
        for d, kind, lateral, u in objects:
            cx, gy, s = self.ground(lateral, d)
            if kind == "car":
                self.car(cx, gy, s, side_view=u < 0.3)
            elif kind == "truck":
                self.truck(cx, gy, s)
            elif kind == "bus":
                self.bus(cx, gy, s)
            elif kind == "train":
                self.bus(cx, gy, s, TRAIN)
            elif kind == "person":
                self.person(cx, gy, s)
            elif kind == "cyclist":
                self.two_wheeler(cx, gy, s, BICYCLE if u < 0.5 else MOTORCYCLE, rider=True)
            elif kind in ("bicycle", "motorcycle"):
                self.two_wheeler(cx, gy, s, BICYCLE if kind == "bicycle" else MOTORCYCLE, rider=False)
            elif kind == "pole":
                self.pole(cx, gy, s)
            elif kind == "tree":
                self.tree(cx, gy, s)
            else:
                self.bin(cx, gy, s)

    def finish(self) -> np.ndarray:
        """Random lighting (gain, tint, gradient, a cast shadow), sensor noise -> uint8 RGB."""
        rng, lr = self.rng, self.k.lighting_range
        gain = 1 + lr * rng.uniform(-1, 1)
        tint = 1 + 0.3 * lr * rng.uniform(-1, 1, 3)
        direction = rng.uniform(-1, 1, 2)
        grad = 1 + lr * 0.6 * ((self.xx / self.w - 0.5) * direction[0] + (self.yy / self.h - 0.5) * direction[1])
        light = gain * grad[..., None] * tint
        side = 1 if rng.random() < 0.5 else -1
        edge = self.xv + side * rng.uniform(0.0, 0.4) * self.w * (self.yy - self.yh) / self.depth_rows
        shadow = (self.yy > self.yh) & ((self.xx - edge) * side > 0)
        light = light * np.where(shadow, 1 - lr * rng.uniform(0.3, 1.0), 1.0)[..., None]
        img = self.img * light + rng.normal(0, 2.0, self.img.shape).astype(np.float32)
        return np.clip(img + 0.5, 0, 255).astype(np.uint8)


def render_scene(rng: np.random.Generator, size: tuple[int, int], knobs: SceneKnobs | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Draw one scene: (image np.uint8 [H, W, 3] RGB, Cityscapes labelIds np.uint8 [H, W])."""
    scene = _Scene(rng, size[0], size[1], knobs or SceneKnobs())
    scene.setup_street()
    scene.draw_sky()
    scene.draw_skyline()
    scene.draw_ground()
    scene.draw_facades(-1)
    scene.draw_facades(1)
    scene.draw_objects()
    return scene.finish(), scene.label


def image_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The generator of one image: depends only on (seed, split, index)."""
    return np.random.default_rng([seed, SPLITS.index(split), index])


def _png_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def _write_image(job: tuple) -> None:
    root, split, index, seed, size, layout, knobs = job
    cv2.setNumThreads(1)
    image, label_ids = render_scene(image_rng(seed, split, index), size, knobs)
    if layout == "cityscapes":
        stem = f"{CITY}_{index:06d}_000019"
        img_dir, gt_dir = root / "leftImg8bit" / split / CITY, root / "gtFine" / split / CITY
        (img_dir / f"{stem}_leftImg8bit.png").write_bytes(_png_bytes(image))
        (gt_dir / f"{stem}_gtFine_labelIds.png").write_bytes(_png_bytes(label_ids))
        (gt_dir / f"{stem}_gtFine_labelTrainIds.png").write_bytes(_png_bytes(LABELID_TO_TRAINID[label_ids]))
    else:
        folder = "training" if split == "train" else "validation"
        stem = f"ADE_{split}_{index + 1:08d}"
        buf = io.BytesIO()
        Image.fromarray(image).save(buf, format="JPEG", quality=90)
        (root / "images" / folder / f"{stem}.jpg").write_bytes(buf.getvalue())
        (root / "annotations" / folder / f"{stem}.png").write_bytes(_png_bytes(LABELID_TO_ADE[label_ids]))


def synth_meta(num_train: int, num_val: int, size: tuple[int, int], seed: int, layout: str,
               knobs: SceneKnobs) -> dict:
    """The content of ``synthcity_meta.json``: everything that determines the output bytes."""
    return {"generator": "synthcity", "version": GENERATOR_VERSION, "seed": seed, "size": list(size),
            "num_train": num_train, "num_val": num_val, "layout": layout, "knobs": dataclasses.asdict(knobs)}


def check_counts(num_train: int, num_val: int, size: tuple[int, int]) -> None:
    """UserError naming the option unless there is at least one image, no negative count, and 32..8192-pixel sides."""
    if num_train < 0 or num_val < 0 or num_train + num_val == 0:
        raise UserError(f"--num-train {num_train} --num-val {num_val}: need at least one image, no negative count")
    if len(size) != 2 or min(size) < 32 or max(size) > 8192:
        raise UserError(f"--size {size[0]}x{size[1]}: each side must lie in 32..8192 pixels")


def generate(out: str | Path, num_train: int, num_val: int, size: tuple[int, int] = (256, 512), seed: int = 0,
             layout: str = "cityscapes", knobs: SceneKnobs | None = None, workers: int | None = None,
             progress: bool = False) -> Path:
    """Write a SynthCity dataset into ``out`` atomically (into a temporary sibling folder, then renamed).

    Args:
        out: the dataset root; must not exist (or be empty) unless it already holds exactly this dataset (then kept
            as is).
        num_train: number of training images; num_val: number of validation images.
        size: (H, W) in pixels, each at least 32.
        seed: the root seed; image i of split s draws from ``image_rng(seed, s, i)``.
        layout: ``cityscapes`` (PNG, labelIds + labelTrainIds) or ``ade20k`` (JPEG + annotations 0..150).
        knobs: difficulty knobs, :class:`SceneKnobs` defaults when None.
        workers: processes drawing images (default: up to 4, at most the CPU count); output does not depend on it.
        progress: show a tqdm bar (on a terminal).

    Returns:
        The dataset root.
    """
    out, knobs = Path(out), knobs or SceneKnobs()
    if layout not in LAYOUTS:
        raise UserError(f"--layout {layout}: choose one of {', '.join(LAYOUTS)}")
    check_counts(num_train, num_val, size)
    size = (int(size[0]), int(size[1]))
    meta = synth_meta(num_train, num_val, size, seed, layout, knobs)
    if out.exists() and not (out.is_dir() and not any(out.iterdir())):  # an empty folder is replaced
        existing = out / META_FILE
        if existing.is_file() and existing.read_text(encoding="utf-8") == dumps_json(meta):
            return out
        raise UserError(f"{out}: already exists and is not this SynthCity dataset; choose another --out or remove it")
    tmp = temp_sibling_dir(out)
    try:
        for split in SPLITS:
            if layout == "cityscapes":
                (tmp / "leftImg8bit" / split / CITY).mkdir(parents=True)
                (tmp / "gtFine" / split / CITY).mkdir(parents=True)
            else:
                folder = "training" if split == "train" else "validation"
                (tmp / "images" / folder).mkdir(parents=True)
                (tmp / "annotations" / folder).mkdir(parents=True)
        jobs = [(tmp, split, i, seed, size, layout, knobs)
                for split, n in (("train", num_train), ("val", num_val)) for i in range(n)]
        _run_jobs(jobs, workers, progress)
        atomic_write_json(tmp / META_FILE, meta)
        try:
            os.rename(tmp, out)
        except OSError:
            if not (out / META_FILE).is_file():  # lost a race only if the winner wrote the same dataset
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _run_jobs(jobs: list[tuple], workers: int | None, progress: bool) -> None:
    from tqdm import tqdm

    workers = workers or min(4, os.cpu_count() or 1)
    bar = tqdm(total=len(jobs), desc="synthcity", unit="img", disable=None if progress else True)
    with bar:
        if workers <= 1:
            for job in jobs:
                _write_image(job)
                bar.update()
            return
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            for _ in pool.map(_write_image, jobs, chunksize=4):
                bar.update()

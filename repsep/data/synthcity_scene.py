"""SynthCity's scene canvas: the label constants, the difficulty knobs, the drawing primitives and the background.

A scene is a road in perspective towards a vanishing point, with lane marks and zebra crossings; tiled sidewalks;
facades along both sides (buildings with window grids, windowless walls, fences, hedges) over terrain; a far
skyline and a cloudy sky; trees; poles carrying traffic signs and lights; cars, trucks, buses, trams, persons,
riders on bicycles and motorcycles, parked bicycles and motorcycles, and bins (Cityscapes ``static``, ignored).
Classes share colour ranges and differ by texture and shape (road vs sidewalk: grain vs slab tiling; building vs
wall: windows; vegetation vs terrain: leaf clumps vs fine grass), thin objects are drawn down to one pixel, and
each image gets random global lighting, a colour tint, a gradient and cast shadows.

This module paints the background (sky, skyline, street, facades); ``synthcity_objects`` adds the objects and the
lighting; ``synthcity`` writes datasets of such scenes.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from repsep.errors import UserError

# Cityscapes labelIds used by the scene grammar.
UNLABELED, STATIC, ROAD, SIDEWALK, BUILDING, WALL, FENCE = 0, 4, 7, 8, 11, 12, 13
POLE, LIGHT, SIGN, VEGETATION, TERRAIN, SKY = 17, 19, 20, 21, 22, 23
PERSON, RIDER, CAR, TRUCK, BUS, TRAIN, MOTORCYCLE, BICYCLE = 24, 25, 26, 27, 28, 31, 32, 33


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


def frac(x: np.ndarray) -> np.ndarray:
    """x - floor(x), elementwise: the position within a unit cell (tiles, windows, stripes)."""
    return x - np.floor(x)


class SceneCanvas:
    """One image being drawn: a labelId map and a float RGB canvas, painted back to front (the background here)."""

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
                    stripes = (frac(xx / 3.0) < 0.4) & (frac(yy / 4.0) < 0.5) & (yy < self.yh - 2)
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
        joints = (frac(u) < 0.08) | (frac(v) < 0.08 * np.minimum(z, 6.0))
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
        dash = (np.abs(lateral - centre) < 0.006) & (frac(z * 0.6) < 0.5)
        edges = (np.abs(lateral - self.road_l - 0.02) < 0.004) | (np.abs(lateral - self.road_r + 0.02) < 0.004)
        marks = dash | edges
        if self.rng.random() < 0.35:
            z0 = self.rng.uniform(1.2, 4.0)
            marks |= (z > z0) & (z < z0 + 0.5) & (frac(lateral / 0.05) < 0.5)
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
        windows = ((frac(u) > 0.25) & (frac(u) < 0.75) & (frac(v * kv) > 0.3) & (frac(v * kv) < 0.8)
                   & (v > 0.35) & (v < height_c - 0.2) & (period_px > 3))
        facade = base_c * (1 + self.tc * 0.05 * self.grain)[..., None]
        glass = np.float32(45) + 40 * np.clip(1 - v / np.maximum(height_c, 0.1), 0, 1)[..., None] * np.float32(
            [0.6, 0.8, 1.0])
        self.put(sl, inside & (kind_c == 0), BUILDING, np.where(windows[..., None], glass, facade))
        # walls: the same materials without windows, stained plaster and panel joints
        wall = base_c * (1 + self.tc * (0.1 * self.mid + 0.04 * self.grain
                                                 - 0.15 * (frac(u * 0.5) < 0.04)))[..., None]
        self.put(sl, inside & (kind_c == 1), WALL, wall)
        # fences: posts and rails over a see-through mesh
        lattice = (frac(u * 2) < 0.15) | (frac(v * 6) < 0.2) | ((frac(u * 12 + v * 12) < 0.3) & (period_px > 6))
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

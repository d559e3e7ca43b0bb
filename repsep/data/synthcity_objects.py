"""SynthCity's objects and lighting: :class:`Scene` (the canvas plus vehicles, persons, poles, trees) and
:func:`render_scene`, one image from its generator."""

from __future__ import annotations

import numpy as np

from repsep.data.synthcity_scene import (
    BICYCLE,
    BUS,
    CAR,
    LIGHT,
    MOTORCYCLE,
    PERSON,
    POLE,
    RIDER,
    SIGN,
    STATIC,
    TRAIN,
    TRUCK,
    VEGETATION,
    SceneCanvas,
    SceneKnobs,
    frac,
)


class Scene(SceneCanvas):
    """A :class:`SceneCanvas` with the objects drawn over the background and the final lighting."""

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
            panels = frac((xx - cx) / max(0.08 * w, 1.0)) < 0.12
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
        windows = (vv > 0.55) & (vv < 0.88) & (frac(u * (9 if tram else 6)) > 0.12)
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
    scene = Scene(rng, size[0], size[1], knobs or SceneKnobs())
    scene.setup_street()
    scene.draw_sky()
    scene.draw_skyline()
    scene.draw_ground()
    scene.draw_facades(-1)
    scene.draw_facades(1)
    scene.draw_objects()
    return scene.finish(), scene.label

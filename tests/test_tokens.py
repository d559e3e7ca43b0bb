"""Which pixels a token covers (analysis.tokens): exact labels after a resize, windows, boundary/interior regions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from analysis.tokens import (
    area_resample,
    axis_cells,
    cell_class_counts,
    labels_at_input,
    majority_labels,
    region_labels,
    window_spans,
)


def _proportional(label: torch.Tensor, grid: tuple[int, int], num_classes: int, purity: float) -> list[int]:
    """The mapping analyze used before: label pixel (y, x) of the *original* map falls in cell (y*h//H, x*w//W)."""
    hgt, wid = label.shape
    h, w = grid
    cls = torch.where(label < num_classes, label, torch.full_like(label, num_classes))
    cell = (torch.arange(hgt) * h // hgt)[:, None] * w + (torch.arange(wid) * w // wid)[None, :]
    counts = torch.bincount((cell * (num_classes + 1) + cls).flatten(), minlength=h * w * (num_classes + 1))
    return majority_labels(counts.view(h * w, num_classes + 1), purity).tolist()


def _three_bands() -> torch.Tensor:
    """60x60 original label: rows 0-23 class 0, 24-47 class 1, 48-59 class 2."""
    label = torch.zeros(60, 60, dtype=torch.long)
    label[24:48] = 1
    label[48:] = 2
    return label


def test_resized_label_maps_each_token_to_exactly_its_pixels():
    # eval resize 60x60 -> 40x40; stride 16 -> a 3x3 grid whose last row/column is half padding
    label = labels_at_input(_three_bands(), (40, 40))
    assert label[:16].eq(0).all() and label[16:32].eq(1).all() and label[32:].eq(2).all()
    rows, cols = axis_cells(40, 16), axis_cells(40, 16)
    counts = cell_class_counts(label, rows, cols, num_classes=3)
    # token (1, 0): 256 pixels of class 1; token (1, 2): 16x8 real pixels of class 1, 128 padding pixels (void)
    assert counts[3].tolist() == [0, 256, 0, 0] and counts[5].tolist() == [0, 128, 0, 128]
    assert counts[8].tolist() == [0, 0, 64, 192]
    assert majority_labels(counts, 0.9).tolist() == [0, 0, -1, 1, 1, -1, -1, -1, -1]
    assert majority_labels(counts, 0.5).tolist() == [0, 0, 0, 1, 1, 1, 2, 2, -1]
    # the proportional mapping drifts: its middle row straddles classes 0 and 1 (4 of 20 rows are class 0)
    assert _proportional(_three_bands(), (3, 3), 3, 0.9) == [0, 0, 0, -1, -1, -1, -1, -1, -1]


def test_labels_at_input_samples_pixel_centres():
    label = torch.arange(6).view(1, 6)
    assert labels_at_input(label, (1, 4)).tolist() == [[0, 2, 3, 5]]  # floor((x + 0.5) * 6 / 4)
    assert labels_at_input(label, (1, 6)) is label


def test_window_spans_are_those_of_slide_logits():
    from repsep.engine.inference import slide_logits

    seen = []

    class Probe(torch.nn.Module):
        def forward(self, x):
            seen.append((int(x[0, 0, 0, 0]), int(x[0, 1, 0, 0]), x.shape[-2], x.shape[-1]))
            return x.new_zeros(x.shape[0], 1, *x.shape[-2:])

    h, w = 50, 70
    image = torch.stack([torch.arange(h)[:, None].expand(h, w), torch.arange(w)[None, :].expand(h, w),
                         torch.zeros(h, w, dtype=torch.long)]).float()[None]
    slide_logits(Probe(), image, (32, 32), (20, 24))
    expect = [(a, c, b - a, d - c) for a, b in window_spans(h, 32, 20) for c, d in window_spans(w, 32, 24)]
    assert seen == expect
    assert window_spans(30, 40, 26) == [(0, 30)]


def test_axis_cells_take_each_cell_from_the_nearest_window():
    whole = axis_cells(40, 16)
    assert whole.start.tolist() == [0, 16, 32] and whole.stop.tolist() == [16, 32, 40]
    # windows [0, 32), [20, 52), [32, 64): mids 16, 36, 48; stride 8 -> centres 4, 12, ..., 60
    cells = axis_cells(64, 8, window_spans(64, 32, 20))
    assert cells.window.tolist() == [0, 0, 0, 1, 1, 2, 2, 2]
    assert cells.token.tolist() == [0, 1, 2, 1, 2, 1, 2, 3]
    assert cells.start.tolist() == [0, 8, 16, 28, 36, 40, 48, 56]  # window 1's tokens start at 20 + 8k
    assert (cells.stop - cells.start).tolist() == [8] * 8


def test_slide_cells_label_from_the_window_tokens_pixels():
    label = torch.zeros(8, 64, dtype=torch.long)
    label[:, 28:] = 1
    rows = axis_cells(8, 8)
    slide = cell_class_counts(label, rows, axis_cells(64, 8, window_spans(64, 32, 20)), 2)
    whole = cell_class_counts(label, rows, axis_cells(64, 8), 2)
    assert slide[3].tolist() == [0, 64, 0]  # window token at pixels 28..35: pure class 1
    assert whole[3].tolist() == [32, 32, 0]  # the image grid's cell 24..31 is mixed


def _two_regions(split: int = 36) -> torch.Tensor:
    label = torch.zeros(64, 64, dtype=torch.long)
    label[:, split:] = 1
    return label


def test_boundary_and_interior_tokens_on_two_regions():
    counts = cell_class_counts(_two_regions(), axis_cells(64, 16), axis_cells(64, 16), 2)
    regions = region_labels(counts, (4, 4), purity=0.8)
    # column 2 holds 4 columns of class 0 and 12 of class 1 (two classes); column 1's neighbour has majority 1
    boundary, interior = regions["boundary"].view(4, 4), regions["interior"].view(4, 4)
    assert boundary[:, 1].eq(0).all() and boundary[:, 2].eq(1).all()
    assert boundary[:, [0, 3]].eq(-1).all()
    assert interior[:, 0].eq(0).all() and interior[:, 3].eq(1).all() and interior[:, [1, 2]].eq(-1).all()
    assert (regions["boundary"] >= 0).sum() == 8 and (regions["interior"] >= 0).sum() == 8
    # the purity rule drops column 2 (12/16 < 0.8): exactly the tokens the boundary set keeps
    assert majority_labels(counts, 0.8).view(4, 4)[:, 2].eq(-1).all()
    # aligned split: no mixed patch, but columns 1 and 2 still border the other class
    aligned = region_labels(cell_class_counts(_two_regions(32), axis_cells(64, 16), axis_cells(64, 16), 2),
                            (4, 4), purity=0.75)
    assert (aligned["boundary"].view(4, 4) >= 0).sum(0).tolist() == [0, 4, 4, 0]


def test_boundary_needs_half_real_pixels_and_void_neighbours_do_not_count():
    label = torch.full((16, 32), 255, dtype=torch.long)
    label[:, :16] = 0
    label[:4, 16:] = 1  # right token: 64 px class 1, rest void
    counts = cell_class_counts(label, axis_cells(16, 16), axis_cells(32, 16), 2)
    regions = region_labels(counts, (1, 2), purity=0.5)
    assert regions["boundary"].tolist() == [0, -1]  # right token is a boundary token but mostly void
    assert regions["interior"].tolist() == [-1, -1]


def test_area_resample_exact_pixel_weights():
    fmap = torch.arange(6, dtype=torch.float32).view(1, 1, 1, 6)  # stride 4 tokens of a 4x22 input
    same = area_resample(fmap, 4, (4, 22), 4)
    assert torch.equal(same, fmap)
    coarse = area_resample(fmap, 4, (4, 22), 8)  # cells 0-7, 8-15, 16-21 (6 real px: 4 of token 4, 2 of token 5)
    assert coarse.flatten().tolist() == pytest.approx([0.5, 2.5, (4 * 4 + 5 * 2) / 6])
    fine = area_resample(fmap, 4, (4, 22), 2)
    assert fine.shape == (1, 1, 2, 11) and fine[0, 0, 1].tolist() == np.repeat(np.arange(6.0), 2)[:11].tolist()

"""Shared test settings: few threads (2-core CI), deterministic torch."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "2")

import torch  # noqa: E402

torch.set_num_threads(2)

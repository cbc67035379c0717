"""Fixtures shared by the data tests."""

from __future__ import annotations

import os

import pytest


@pytest.fixture
def skip_cifar_md5(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let torchvision's CIFAR10 accept fake files: keep its existence check, drop the MD5 one.

    torchvision compares every CIFAR-10 file with the MD5 of the real dataset, which fake files
    cannot match; everything else (pickle layout, reshape, HWC transpose) stays torchvision's.
    """
    import torchvision.datasets.cifar as cifar

    monkeypatch.setattr(cifar, "check_integrity", lambda fpath, md5=None: os.path.isfile(fpath))

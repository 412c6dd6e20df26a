"""Padding must not create heads: a thin strip of a picture, predicted alone, gets about the count that the same
pixels get inside the whole picture (the shipped model; fixture photos and a synthetic crowd)."""
from pathlib import Path

import numpy as np
import pytest
import torch

from cltr_learn.inference import load_image, predict
from cltr_learn.model import load_model
from cltr_learn.synthetic import make_crowd

ROOT = Path(__file__).resolve().parents[1]
PHOTOS = ['ShanghaiTech/part_A/train_data/images/IMG_1.jpg', 'ShanghaiTech/part_B/test_data/images/IMG_1.jpg']


@pytest.fixture(scope='module')
def model():
    torch.set_num_threads(1)
    return load_model(ROOT / 'data' / 'cltr_small.safetensors')


def strip_counts(model, image, rows):
    whole = predict(model, image)['points']
    for y0, h in rows:
        inside = int(((whole[:, 1] >= y0) & (whole[:, 1] < y0 + h)).sum())
        yield h, predict(model, np.ascontiguousarray(image[y0:y0 + h]))['count'], inside


@pytest.mark.parametrize('name', PHOTOS)
def test_strips_of_photos(model, name):
    image = load_image(ROOT / 'data' / 'fixtures' / name)
    for h, alone, inside in strip_counts(model, image, [(40, 10), (100, 10), (60, 24)]):
        assert abs(alone - inside) <= 0.5 * inside + 5, (name, h, alone, inside)


def test_strips_of_a_synthetic_crowd(model):
    image, _ = make_crowd(256, 512, 150, seed=5)
    for h, alone, inside in strip_counts(model, image, [(100, 10), (100, 20), (100, 40), (60, 64)]):
        assert abs(alone - inside) <= 0.5 * inside + 5, (h, alone, inside)

"""Pictures for people (stylegan_sdk.images): nearest-neighbour upscaling, display factors, labelled grids."""

from __future__ import annotations

import numpy as np
import pytest

from stylegan_sdk.images import display_factor, grid, labelled_grid, scale_caption, upscale


def tiles(n: int, size: int = 8, channels: int = 3) -> list[np.ndarray]:
    rng = np.random.RandomState(0)
    return [rng.randint(0, 200, [size, size, channels]).astype(np.uint8) for _ in range(n)]


def test_upscale_turns_every_pixel_into_a_block():
    img = tiles(1, size=5)[0]
    big = upscale(img, 3)
    assert big.shape == (15, 15, 3)
    for y in range(5):
        for x in range(5):
            assert (big[3 * y: 3 * y + 3, 3 * x: 3 * x + 3] == img[y, x]).all()
    assert upscale(img, 1) is not None and np.array_equal(upscale(img, 1), img)
    for bad in (0, -2, 1.5, "2"):
        with pytest.raises(ValueError, match="factor"):
            upscale(img, bad)


@pytest.mark.parametrize("resolution, factor", [(8, 16), (16, 8), (32, 4), (64, 2), (100, 2), (128, 1), (1024, 1)])
def test_display_factor_makes_tiles_at_least_128_px(resolution, factor):
    assert display_factor(resolution) == factor
    assert scale_caption(factor) == ("actual size" if factor == 1 else f"shown {factor}x, nearest neighbour")


def _find(picture: np.ndarray, tile: np.ndarray) -> list[tuple[int, int]]:
    h, w = tile.shape[:2]
    return [(y, x) for y in range(picture.shape[0] - h + 1) for x in range(picture.shape[1] - w + 1)
            if picture[y, x, 0] == tile[0, 0, 0] and np.array_equal(picture[y: y + h, x: x + w], tile)]


def test_labelled_grid_places_upscaled_tiles_in_order_with_text_around_them():
    cells = tiles(6)
    picture = labelled_grid(cells, cols=3, title="a title", col_labels=["a", "b", "c"], row_labels=["r0", "r1"],
                            cell_labels=[f"seed {k}" for k in range(6)], factor=4, pad=6)
    assert picture.dtype == np.uint8 and picture.ndim == 3 and picture.shape[2] == 3
    positions = [_find(picture, upscale(c, 4)) for c in cells]
    assert all(len(p) == 1 for p in positions), "each tile appears once, upscaled"
    (y0, x0), (y1, x1), (y3, x3) = positions[0][0], positions[1][0], positions[3][0]
    assert y1 == y0 and x1 == x0 + 32 + 6          # next column
    assert x3 == x0 and y3 > y0 + 32                # next row, below the captions
    assert y0 > 2 * 14 and x0 > 6                   # room for the title, column and row labels
    outside = picture.copy()
    for (y, x), in positions:
        outside[y: y + 32, x: x + 32] = 255
    assert (outside < 128).sum() > 200, "the text is drawn"


def test_labelled_grid_without_text_is_just_the_padded_tiles_and_handles_gray_and_blank_cells():
    cells: list[np.ndarray | None] = [None, *tiles(3, channels=1)]
    picture = labelled_grid(cells, cols=2, factor=2, pad=4)
    assert picture.shape == (4 + 2 * (16 + 4), 4 + 2 * 16 + 4 + 4, 3)
    gray = upscale(cells[1], 2).repeat(3, axis=2)
    assert len(_find(picture, gray)) == 1
    np.testing.assert_array_equal(grid(cells[1:], cols=3, pad=0)[:, :8], cells[1])


def test_labelled_grid_refuses_label_counts_that_do_not_fit():
    with pytest.raises(ValueError, match="col_labels: expected 3"):
        labelled_grid(tiles(6), cols=3, col_labels=["a"])
    with pytest.raises(ValueError, match="row_labels: expected 2"):
        labelled_grid(tiles(6), cols=3, row_labels=["a", "b", "c"])
    with pytest.raises(ValueError, match="cell_labels: expected 6"):
        labelled_grid(tiles(6), cols=3, cell_labels=["a"])
    with pytest.raises(ValueError, match="cells"):
        labelled_grid([None, None], cols=2)

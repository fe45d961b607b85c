"""Generate the sample city's unit grid (``grid_cells.csv``) from its districts files.

The sample city is synthetic: a rounded outline of roughly 100 m x 100 m cells
cut into four streets (quadrants with a kinked boundary, so neighbours are not
a perfect cross) and four communities per street. The grid geometry (origin and
cell size) comes from ``district.json``, the streets and communities from their
files, so the CSV stays consistent with them. Run it again after changing any
of those: ``python tools/make_sample_grid.py [reference-data-dir]``.
"""

from __future__ import annotations

import csv
import json
import math
import sys
from pathlib import Path

COLUMNS = 26
ROWS = 24
# Which quadrant each street takes (north = higher rows).
STREET_QUADRANT = {
    "320508003": "NW",
    "320508001": "NE",
    "320508002": "SW",
    "320508004": "SE",
}
# Communities of a street, in code order, take these sub-quadrants of it.
COMMUNITY_ORDER = ("NW", "NE", "SW", "SE")
# The old-town core that makes class A cells, in grid units.
CORE_ROW, CORE_COL = 14.0, 13.0


def inside_outline(row: int, col: int) -> bool:
    """A superellipse outline: a city rounder than its bounding box."""
    x = (col + 0.5 - COLUMNS / 2) / (COLUMNS / 2 + 0.6)
    y = (row + 0.5 - ROWS / 2) / (ROWS / 2 + 0.6)
    return abs(x) ** 3 + abs(y) ** 3 <= 1.0


def west_east_split(row: int) -> int:
    """First column of the eastern streets; the boundary kinks at the river."""
    return 12 if row >= 12 else 14


def quadrant_of(row: int, col: int, split_col: int, split_row: int) -> str:
    return ("N" if row >= split_row else "S") + ("E" if col >= split_col else "W")


def area_class(row: int, col: int) -> str:
    distance = math.hypot((col + 0.5 - CORE_COL) / 13, (row + 0.5 - CORE_ROW) / 12)
    if distance < 0.4:
        return "A"
    if distance < 0.85:
        return "B"
    return "C"


def build_rows(directory: Path) -> list[dict[str, str]]:
    district = json.loads((directory / "district.json").read_text(encoding="utf-8"))
    communities = json.loads((directory / "communities.json").read_text(encoding="utf-8"))
    grid = district["grid"]
    by_street: dict[str, list[str]] = {}
    for community in communities:
        by_street.setdefault(community["street"], []).append(community["code"])
    street_at = {quadrant: street for street, quadrant in STREET_QUADRANT.items()}

    cells: dict[str, list[tuple[int, int]]] = {}
    for row in range(ROWS):
        for col in range(COLUMNS):
            if not inside_outline(row, col):
                continue
            split_col = west_east_split(row)
            street = street_at[quadrant_of(row, col, split_col, ROWS // 2)]
            # Sub-quadrant inside the street's block, split at the block's middle.
            west = col < split_col
            block_cols = (0, split_col) if west else (split_col, COLUMNS)
            block_rows = (ROWS // 2, ROWS) if row >= ROWS // 2 else (0, ROWS // 2)
            sub = quadrant_of(row, col, sum(block_cols) // 2, sum(block_rows) // 2)
            community = sorted(by_street[street])[COMMUNITY_ORDER.index(sub)]
            cells.setdefault(community, []).append((row, col))

    out: list[dict[str, str]] = []
    for community in sorted(cells):
        # Number cells north to south, west to east, from 01 (00 means a whole community).
        for number, (row, col) in enumerate(
            sorted(cells[community], key=lambda rc: (-rc[0], rc[1])), 1
        ):
            if number > 99:
                raise SystemExit(f"community {community} has more than 99 cells")
            min_lon = grid["origin_lon"] + col * grid["cell_lon_deg"]
            min_lat = grid["origin_lat"] + row * grid["cell_lat_deg"]
            out.append(
                {
                    "code": f"{community}{number:02d}",
                    "district": district["code"],
                    "street": community[:9],
                    "community": community,
                    "area_class": area_class(row, col),
                    "row": str(row),
                    "col": str(col),
                    "min_lon": f"{min_lon:.7f}",
                    "min_lat": f"{min_lat:.7f}",
                    "max_lon": f"{min_lon + grid['cell_lon_deg']:.7f}",
                    "max_lat": f"{min_lat + grid['cell_lat_deg']:.7f}",
                }
            )
    return out


def main() -> None:
    default = Path(__file__).resolve().parents[1] / "reference_data" / "sample-city"
    directory = Path(sys.argv[1]) if len(sys.argv) > 1 else default
    rows = build_rows(directory)
    with (directory / "grid_cells.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {len(rows)} cells to {directory / 'grid_cells.csv'}")


if __name__ == "__main__":
    main()
